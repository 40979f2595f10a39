"""Writing outbox rows: which platforms a message goes to, and where on each.

`Ctx.send` calls `queue` for every outgoing message. One row is written per platform this
deployment delivers to (`Settings.platforms`) on which the destination exists:

- a direct message: the person has an identity on the platform (the console reaches everyone;
  on Slack a person with no identity rows at all is reached by their id, which was their Slack
  user id before identities existed);
- a channel: the channel is known on the platform (on Slack and the console the core's channel
  id is the channel; elsewhere through the AOR whose Slack channel it is: `aor_channel`);
- a thread: the case's root message is on the platform (it is queued first, in the same
  transaction).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from bot.messages import DestinationKind, Message
from config.platforms import Platform
from storage.models import Aor, AorChannel, OutboxMessage, Person, PersonIdentity

# Platforms on which the core's channel ids are the platform's own (legacy: Slack ids).
_NATIVE_CHANNELS = frozenset({Platform.slack, Platform.console})


def queue(session: Session, *, now: datetime, platforms: Iterable[Platform],
          kind: DestinationKind, destination: str, message: Message,
          case_id: str | None = None) -> list[OutboxMessage]:
    """Add one outbox row per platform the destination is on; returns the rows added."""
    payload = message.to_dict()
    rows = []
    for platform in platforms:
        where = destination_on(session, platform, kind, destination)
        if where is None:
            continue
        row = OutboxMessage(created_at=now, case_id=case_id, destination_kind=kind.value,
                            destination=where, message_key=message.key, payload=payload,
                            platform=platform.value)
        session.add(row)
        rows.append(row)
    return rows


def destination_on(session: Session, platform: Platform, kind: DestinationKind,
                   destination: str) -> str | None:
    """The row's destination on `platform` (person id, channel conversation, case id), or None
    if the destination is not on that platform."""
    if kind is DestinationKind.dm:
        return destination if reachable(session, platform, destination) else None
    if kind is DestinationKind.channel:
        return channel_on(session, platform, destination)
    # A thread follows its root: the root's row is already in this session (autoflush).
    root = session.exec(
        select(OutboxMessage.id)
        .where(OutboxMessage.message_key == f"{destination}:root",
               OutboxMessage.platform == platform.value)
        .limit(1)
    ).first()
    return destination if root is not None or platform in _NATIVE_CHANNELS else None


def channel_on(session: Session, platform: Platform, channel: str) -> str | None:
    """The conversation of the core's channel id on `platform`."""
    if platform in _NATIVE_CHANNELS:
        return channel
    return session.exec(
        select(AorChannel.conversation)
        .join(Aor, col(Aor.id) == col(AorChannel.aor_id))
        .where(AorChannel.platform == platform.value,
               (col(Aor.channel) == channel) | (col(Aor.id) == channel))
        .limit(1)
    ).first()


def identity(session: Session, platform: Platform, user_id: str) -> str | None:
    """The person's id on `platform`, or None if they are not on it."""
    if platform is Platform.console:
        return user_id
    found = session.exec(
        select(PersonIdentity.platform, PersonIdentity.external_id)
        .where(PersonIdentity.user_id == user_id)
    ).all()
    for on, external_id in found:
        if on == platform.value:
            return external_id
    # Before identities existed a person's id was their Slack id; a DM to an id that is no
    # person (an admin set by hand) keeps going where it went.
    return user_id if platform is Platform.slack and not found else None


def reachable(session: Session, platform: Platform, user_id: str) -> bool:
    return identity(session, platform, user_id) is not None


def person_of(session: Session, platform: Platform, external_id: str) -> str | None:
    """The noticebot person id of a platform identity (inbound adapters resolve through here).
    On Slack an id with no identity row is taken as the person id itself, as before identities
    existed, when such a person exists."""
    if platform is Platform.console:
        return external_id
    found = session.exec(
        select(PersonIdentity.user_id)
        .where(PersonIdentity.platform == platform.value,
               PersonIdentity.external_id == external_id)
    ).first()
    if found is not None:
        return found
    if platform is Platform.slack and session.get(Person, external_id) is not None:
        return external_id
    return None
