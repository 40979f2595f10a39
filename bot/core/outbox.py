"""Writing outbox rows: which platforms a message goes to, and where on each.

`Ctx.send` calls `queue` for every outgoing message. One row is written per platform this
deployment delivers to (`Settings.platforms`) on which the destination exists:

- a direct message: the person has an identity on the platform (the console reaches everyone;
  on Slack a person with no identity rows at all is reached by their id, which was their Slack
  user id before identities existed);
- a channel: the channel is known on the platform (on Slack and the console the core's channel
  id is the channel; elsewhere through the AOR whose Slack channel or id it is: `aor_channel`;
  an AOR with no Slack channel is named by its id, which is on no Slack channel);
- a thread: the case's root message is on the platform (it is queued first, in the same
  transaction).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.identities import reachable
from bot.messages import DestinationKind, Message
from config.platforms import Platform
from storage.models import Aor, AorChannel, OutboxMessage

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
        row = OutboxMessage(created_at=now, case_id=case_id, destination_kind=kind,
                            destination=where, message_key=message.key, payload=payload,
                            platform=platform)
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


def case_channel(session: Session, aor: Aor | None, *, origin_channel: str) -> str:
    """The core's channel id for a new case's root message: its AOR's Slack channel; the AOR's
    own id if the AOR has channels elsewhere only (a Teams-only AOR: `channel_on` finds them
    by it); where the case was opened if the AOR has no channel at all."""
    if aor is None:
        return origin_channel
    if aor.channel:
        return aor.channel
    elsewhere = session.exec(
        select(AorChannel.platform).where(AorChannel.aor_id == aor.id).limit(1)).first()
    return aor.id if elsewhere is not None else origin_channel


def channel_on(session: Session, platform: Platform, channel: str) -> str | None:
    """The conversation of the core's channel id on `platform`."""
    if platform is Platform.slack and _aor_without_slack_channel(session, channel):
        return None  # an AOR's id stands for its channels elsewhere: none is on Slack
    if platform in _NATIVE_CHANNELS:
        return channel
    return session.exec(
        select(AorChannel.conversation)
        .join(Aor, col(Aor.id) == col(AorChannel.aor_id))
        .where(AorChannel.platform == platform.value,
               (col(Aor.channel) == channel) | (col(Aor.id) == channel))
        .limit(1)
    ).first()


def _aor_without_slack_channel(session: Session, channel: str) -> bool:
    return session.exec(
        select(Aor.id).where(Aor.id == channel, col(Aor.channel).is_(None)).limit(1)
    ).first() is not None
