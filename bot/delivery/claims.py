"""Claiming outbox rows: which due row of a platform may go now, taken by one loop only.

One transaction moves one due `pending` row (`next_attempt_at` unset or past) to `sending` with
a conditional UPDATE (`attempts` is the row's version), so two loops never claim the same row.
On PostgreSQL the claims of all replicas are serialized per platform by an advisory lock
(SQLite's BEGIN IMMEDIATE does the same), so the ordering rules hold across replicas: a row is
not claimed while an earlier row of its platform for the same destination, with the same
message key, or (for a thread reply) its case's root is still pending or sending; a thread reply
waits until its root has been posted; and a conversation has at most one message in flight.
A claim older than the lease belongs to a loop that died and is taken over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.messages import DestinationKind
from config.platforms import Platform
from storage.db import transaction
from storage.models import OutboxMessage, OutboxStatus, PlatformMessage

log = logging.getLogger(__name__)

CLAIM_WINDOW = 1000  # unfinished rows looked at per claim, oldest first
UNCERTAIN = "uncertain: "  # error prefix: the failed attempt may have reached the platform
# Arbitrary constants: the PostgreSQL advisory locks that serialize each platform's claims
# (Slack's is the one the Slack relay always used, so old and new replicas agree).
CLAIM_LOCK_KEYS = {Platform.slack: 0x6E6272656C6179, Platform.teams: 0x6E6272656C617A,
                   Platform.console: 0x6E6272656C617B}
_UNFINISHED = (OutboxStatus.pending.value, OutboxStatus.sending.value)

# Is a pending row ready as far as time and its lane go: (due, lane, busy lanes, now, soon).
Ready = Callable[[datetime | None, str, set[str], datetime, Callable[[float], None]], bool]


@dataclass(frozen=True)
class Claim:
    id: int
    attempts: int  # including this one: also the claim's version
    claimed_at: datetime
    kind: DestinationKind
    destination: str
    case_id: str | None
    payload: dict[str, Any]
    alert: bool
    verify: bool  # an earlier attempt may have reached the platform: look before posting
    lane: str = ""  # the conversation it posts into


def claim(engine: Engine, platform: Platform, *, now: datetime, lease: timedelta,
          ready: Ready, need_root: bool = True) -> tuple[Claim | None, float | None]:
    """A claimed row of `platform`, or None and how many seconds until one may be claimable
    (None: nothing is waiting on time). `need_root`: a thread reply waits until its root has
    been posted on the platform (not on the console, which names a thread by its case)."""
    wait: float | None = None

    def soon(seconds: float) -> None:
        nonlocal wait
        wait = seconds if wait is None else min(wait, seconds)

    with transaction(engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": CLAIM_LOCK_KEYS[platform]})
        rows = session.execute(
            sa_select(col(OutboxMessage.id), col(OutboxMessage.status),
                      col(OutboxMessage.destination_kind), col(OutboxMessage.destination),
                      col(OutboxMessage.message_key), col(OutboxMessage.next_attempt_at),
                      col(OutboxMessage.claimed_at), col(OutboxMessage.attempts))
            .where(col(OutboxMessage.platform) == platform.value,
                   col(OutboxMessage.status).in_(_UNFINISHED))
            .order_by(col(OutboxMessage.id)).limit(CLAIM_WINDOW)
        ).all()
        roots = root_channels(session, platform, [r.destination for r in rows
                                                  if r.destination_kind == DestinationKind.thread])

        def lane(kind: DestinationKind, destination: str) -> str:
            """The conversation the row posts into (one message in flight each)."""
            if kind == DestinationKind.thread:
                return f"C:{roots.get(destination, '?' + destination)}"
            return f"{'U' if kind == DestinationKind.dm else 'C'}:{destination}"

        busy = {lane(r.destination_kind, r.destination) for r in rows
                if r.status == OutboxStatus.sending}
        blocked: set[str] = set()
        for r in rows:
            keys = {f"D:{r.destination_kind}:{r.destination}"}
            if r.message_key is not None:
                keys.add(f"K:{r.message_key}")
            waits_on = keys | ({f"K:{r.destination}:root"}
                               if r.destination_kind == DestinationKind.thread else set())
            conversation = lane(r.destination_kind, r.destination)
            if r.status == OutboxStatus.sending:
                # In flight; taken over once its claim is older than the lease.
                candidate = r.claimed_at is None or r.claimed_at <= now - lease
            else:
                candidate = (
                    not waits_on & blocked
                    and (r.destination_kind != DestinationKind.thread
                         or r.destination in roots or not need_root)
                    and ready(r.next_attempt_at, conversation, busy, now, soon)
                )
            blocked |= keys
            if not candidate:
                continue
            won = session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == r.id,
                       col(OutboxMessage.status) == r.status,
                       col(OutboxMessage.attempts) == r.attempts)
                .values(status=OutboxStatus.sending.value, claimed_at=now,
                        attempts=r.attempts + 1)
            ).rowcount  # type: ignore[attr-defined]
            if won != 1:
                continue
            row = session.get(OutboxMessage, r.id)
            assert row is not None and row.id is not None
            if r.status == OutboxStatus.sending:
                log.warning("outbox %s: taking over a claim from %s", row.id, r.claimed_at)
            return Claim(
                id=row.id, attempts=r.attempts + 1, claimed_at=now,
                kind=row.destination_kind, destination=row.destination,
                case_id=row.case_id, payload=dict(row.payload), alert=row.alert,
                verify=r.status == OutboxStatus.sending
                or (row.error or "").startswith(UNCERTAIN),
                lane=conversation,
            ), None
    return None, wait


def root_channels(session: Session, platform: Platform,
                  case_ids: Sequence[str]) -> dict[str, str]:
    """Case id -> conversation of its posted root message, for the thread rows given."""
    keys = {f"{case_id}:root" for case_id in case_ids}
    if not keys:
        return {}
    found = session.exec(
        select(PlatformMessage).where(col(PlatformMessage.message_key).in_(keys),
                                      col(PlatformMessage.platform) == platform.value)
    ).all()
    return {pm.message_key.removesuffix(":root"): pm.channel for pm in found}


def mine(claim: Claim) -> Any:
    """The WHERE clause that matches the row only while this claim holds it."""
    return ((col(OutboxMessage.id) == claim.id)
            & (col(OutboxMessage.status) == OutboxStatus.sending.value)
            & (col(OutboxMessage.attempts) == claim.attempts))
