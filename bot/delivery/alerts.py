"""Telling the deployment's admins that delivery needs them (a dead letter, credentials a
platform refuses), in the caller's transaction: one DM row per admin on each platform given,
flagged as an alert so that an alert that itself fails alerts no one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.core import outbox
from bot.messages import DestinationKind, Message
from config.platforms import Platform
from storage.models import Person, PersonRole, Role

ACTOR = "noticebot:relay"  # who the record says acted
PLATFORM_NAMES = {"slack": "Slack", "teams": "Teams", "console": "the console"}


@dataclass(frozen=True)
class Told:
    """Who an alert was queued for, and the admins it could reach on none of the platforms."""

    alerted: list[str] = field(default_factory=list)
    not_reachable: list[str] = field(default_factory=list)

    def for_record(self) -> dict[str, Any]:
        """What the record says: only those told, and any who could not be."""
        return {"alerted": self.alerted,
                **({"not_reachable": self.not_reachable} if self.not_reachable else {})}


def tell_admins(session: Session, *, now: datetime, platforms: tuple[Platform, ...],
                message: Message, case_id: str | None = None) -> Told:
    admins = active_admins(session)
    alerted = []
    for admin in admins:
        rows = outbox.queue(session, now=now, platforms=platforms, kind=DestinationKind.dm,
                            destination=admin, message=message, case_id=case_id)
        for row in rows:
            row.alert = True
        if rows:
            alerted.append(admin)
    return Told(alerted=alerted, not_reachable=[a for a in admins if a not in alerted])


def active_admins(session: Session) -> list[str]:
    return list(session.exec(
        select(PersonRole.user_id)
        .join(Person, col(Person.user_id) == col(PersonRole.user_id))
        .where(PersonRole.role == Role.admin.value, col(Person.active).is_(True))
        .order_by(col(PersonRole.user_id))
    ).all())


def platform_name(platform: str, *, capital: bool = False) -> str:
    name = PLATFORM_NAMES.get(platform, platform)
    return f"{name[0].upper()}{name[1:]}" if capital else name
