"""The per-interaction context: one transaction, one actor, the clock, the record and outbox."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.core import outbox
from bot.core.errors import FormErrors, Refused
from bot.core.identities import Actor, acting_as
from bot.messages import DestinationKind, Message
from config.platforms import Platform
from config.settings import Settings
from storage import record
from storage.db import transaction
from storage.models import OutboxMessage
from storage.vault import Vault

# Where an action came from when it is not a chat platform's signed request: the command line's
# operating-system account and host. Every entry recorded meanwhile carries it (`origin`).
_ORIGIN: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "noticebot_origin", default=None)


@contextmanager
def acting_from(origin: dict[str, str]) -> Iterator[None]:
    """Record `origin` (e.g. {"os_user": ..., "host": ...}) on every entry made inside."""
    token = _ORIGIN.set(dict(origin))
    try:
        yield
    finally:
        _ORIGIN.reset(token)


def current_origin() -> dict[str, str] | None:
    return _ORIGIN.get()


@dataclass
class Ctx:
    session: Session
    clock: Clock
    settings: Settings
    actor: str
    now: datetime
    # Entries wait here and are chained at the end of the unit of work, so the chain's lock
    # is held only for the append and the commit, not for the whole interaction.
    pending: list[tuple[str, str, str | None, dict[str, Any]]] = field(default_factory=list)
    # The chat platform the actor came from (None: console, command line, services): how the
    # people they name by a mention are resolved (`commands.named_person`).
    platform: Platform | None = None
    vault: Vault = field(init=False)

    def __post_init__(self) -> None:
        self.vault = Vault(self.settings.vault_keys)

    @property
    def today(self) -> date:
        return self.now.date()

    def record(
        self, kind: str, action: str, /, *, case_id: str | None = None, **payload: Any
    ) -> None:
        """Add an entry to the record; it is written in this unit of work's transaction."""
        self.pending.append((kind, action, case_id, payload))

    def flush_records(self) -> None:
        origin = current_origin()
        record.append_many(self.session, [
            record.NewEntry(at=self.now, actor=self.actor, kind=kind, action=action,
                            case_id=case_id,
                            payload=payload if origin is None else {**payload, "origin": origin})
            for kind, action, case_id, payload in self.pending], vault=self.vault)
        self.pending.clear()

    @contextmanager
    def undone_if_stopped(self) -> Iterator[None]:
        """Run a step so that a refusal or invalid input (`Refused`, `FormErrors`) undoes what
        it changed and recorded, and the rest of the interaction goes on in the same
        transaction to record the attempt and why it was not done. A savepoint does it: one
        transaction an interaction, where a second one to record a refusal would resolve the
        actor, take the delivery key and wait for the write lock again."""
        kept = len(self.pending)
        savepoint = self.session.begin_nested()
        try:
            yield
        except (Refused, FormErrors):
            savepoint.rollback()
            del self.pending[kept:]
            raise
        savepoint.commit()

    def state(self, action: str, /, *, case_id: str | None = None, **payload: Any) -> None:
        """Record a state change (same transaction as the change)."""
        self.record("state", action, case_id=case_id, **payload)

    def send(
        self,
        kind: DestinationKind,
        destination: str,
        message: Message,
        *,
        case_id: str | None = None,
        platforms: tuple[Platform, ...] | None = None,
    ) -> bool:
        """Queue an outgoing message in the outbox and record it. A keyed message whose content
        has not changed since it was last queued is not queued again (returns False).
        `platforms`: where it goes (default: every platform the deployment delivers to)."""
        payload = message.to_dict()
        if message.key is not None:
            last = self.session.exec(
                select(OutboxMessage.payload)
                .where(OutboxMessage.message_key == message.key)
                .order_by(col(OutboxMessage.id).desc())
                .limit(1)
            ).first()
            if last == payload:
                return False
        outbox.queue(self.session, now=self.now, kind=kind,
                     platforms=self.settings.platforms if platforms is None else platforms,
                     destination=destination, message=message, case_id=case_id)
        self.record(
            "outbound",
            "message.queued",
            case_id=case_id,
            destination_kind=kind.value,
            destination=destination,
            key=message.key,
            message=payload,
        )
        return True


@contextmanager
def unit_of_work(
    engine: Engine, *, clock: Clock, settings: Settings, actor: Actor
) -> Iterator[Ctx]:
    """One transaction for one actor: the change and its record commit together or not at all.
    A platform's user is resolved to the person they act as in this same transaction."""
    with transaction(engine) as session:
        person = actor if isinstance(actor, str) else acting_as(session, actor)
        ctx = Ctx(session=session, clock=clock, settings=settings, actor=person, now=clock.now(),
                  platform=None if isinstance(actor, str) else actor.platform)
        yield ctx
        ctx.flush_records()
