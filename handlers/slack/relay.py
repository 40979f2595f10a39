"""Deliver the outbox to Slack exactly once, from any number of relays (spec R6, P5).

Each message goes through three short steps; no transaction is held across a call to Slack.

1. Claim. One transaction moves one due `pending` row (`next_attempt_at` unset or past) to
   `sending` with a conditional UPDATE, so two relays never claim the same row. On PostgreSQL
   the claims of all replicas are serialized by an advisory lock (SQLite's BEGIN IMMEDIATE does
   the same), so the ordering rules hold across replicas: a row is not claimed while an earlier
   row for the same destination, with the same message key, or (for a thread reply) its case's
   root is still pending or sending; a thread reply waits until its root has been posted; and a
   Slack channel has at most one message in flight.
2. Send, outside any transaction. Every new post carries the outbox id in its metadata.
3. Finish. Sent: `platform_ref` keeps the ts, and a keyed message's first post is remembered so
   later versions update it in place. 429: retried after Retry-After. 5xx, timeouts, dropped
   connections: exponential back-off through `next_attempt_at`. Permanent errors: the row is
   dead-lettered, with a record entry and a DM alert to every admin.

Throughput (P5): a drain runs `concurrency` threads, each claiming and sending one row at a
time, so a slow answer from Slack holds up only its own conversation. Slack allows about one
post per second per channel: each relay paces itself (`pace` between its posts into one
conversation) rather than learning the limit from 429s, and a drain lingers up to `linger`
seconds for rows that are about to become due instead of leaving them to the next tick.

A claim older than the lease belongs to a relay that died and is taken over. A new post is never
re-sent blindly after a takeover or after an attempt that may have reached Slack (timeout, 5xx,
dropped connection): the channel's history (the thread's replies) is searched for a message
carrying the row's outbox id first, and if there is one the row is marked sent with its ts.
Updates (chat.update) are idempotent and are simply sent again.

The client's own retry handlers still absorb short blips, on a copy of the client: a dropped
connection only when the request cannot have reached Slack, and never a 429; everything else
comes back here and waits in the outbox.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from sqlalchemy import Engine, text, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.messages import DestinationKind, Message
from bot.ops import metrics
from handlers.slack.blocks import fallback_text, message_blocks
from storage import record
from storage.db import transaction
from storage.models import OutboxMessage, OutboxStatus, Person, PersonRole, PlatformMessage, Role

log = logging.getLogger(__name__)

ACTOR = "noticebot:relay"
PLATFORM = "slack"
EVENT_TYPE = "noticebot_outbox"
LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=5)
MAX_RETRY_AFTER = timedelta(hours=1)
UNCERTAIN = "uncertain: "  # error prefix: the failed attempt may have reached Slack
CLAIM_WINDOW = 1000  # unfinished rows looked at per claim, oldest first
PACE = 1.0  # seconds between one relay's posts into one Slack conversation (Slack: ~1/s)
CONCURRENCY = 4  # rows in flight per relay (never two in one conversation)
LINGER = 2.0  # seconds a drain waits for rows about to become due before returning
POLL = 0.05  # seconds between looks while a conversation is busy with another row
HISTORY_PAGE = 200
HISTORY_PAGES = 5  # how far back a possibly-posted message is looked for
# Arbitrary constant: the PostgreSQL advisory lock that serializes outbox claims.
CLAIM_LOCK_KEY = 0x6E6272656C6179
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "invalid_auth", "account_inactive", "is_archived",
    "user_not_found", "cannot_dm_bot", "invalid_blocks", "msg_too_long", "no_text",
    # Also never cured by waiting: configuration, or a message Slack refuses as it is.
    "not_authed", "token_revoked", "token_expired", "missing_scope", "invalid_arguments",
    "restricted_action", "team_access_not_granted", "message_not_found", "cant_update_message",
    "edit_window_closed", "invalid_metadata_format", "invalid_metadata_schema",
    "metadata_too_large", "invalid_payload",
})
_UNFINISHED = (OutboxStatus.pending.value, OutboxStatus.sending.value)


class _Retry(Exception):
    """A transient failure: back to pending until `delay` (default: exponential back-off)."""

    def __init__(self, code: str, *, uncertain: bool, delay: timedelta | None = None) -> None:
        super().__init__(code)
        self.code, self.uncertain, self.delay = code, uncertain, delay


class _Dead(Exception):
    """A permanent failure: the row is dead-lettered."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _Lost(Exception):
    """The claim was taken over by another relay (this one outlived its lease)."""


@dataclass(frozen=True)
class _Claim:
    id: int
    attempts: int  # including this one: also the claim's version
    claimed_at: datetime
    kind: str
    destination: str
    case_id: str | None
    payload: dict[str, Any]
    alert: bool
    verify: bool  # an earlier attempt may have reached Slack: look before posting
    lane: str = ""  # the Slack conversation it posts into


class _Budget:
    """Claims a drain may still make, shared by its threads."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True

    def give_back(self) -> None:
        with self.lock:
            self.left += 1


class SlackRelay:
    def __init__(self, *, engine: Engine, client: WebClient, clock: Clock,
                 lease: timedelta = LEASE, max_backoff: timedelta = MAX_BACKOFF,
                 pace: float = PACE, concurrency: int = CONCURRENCY,
                 linger: float = LINGER) -> None:
        self.engine = engine
        self.client = client
        self.clock = clock
        self.lease = lease
        self.max_backoff = max_backoff
        self.pace = pace
        self.concurrency = max(1, concurrency)
        self.linger = linger
        self.api = relay_client(client)
        # Conversation -> when this relay last posted into it (monotonic seconds: Slack's
        # limits run on real time, whatever clock the relay is given).
        self._last_post: dict[str, float] = {}
        # Lingering threads wait on this; `nudge` (new rows queued) wakes them early.
        self._arrived = threading.Condition()
        self._nudges = 0
        self._stopping = threading.Event()

    def nudge(self) -> None:
        """New rows were queued: threads lingering in a drain look again at once."""
        with self._arrived:
            self._nudges += 1
            self._arrived.notify_all()

    def stop(self) -> None:
        """The process is stopping: drains finish the message in hand and claim no more (the
        rest stays in the outbox for the next relay), instead of lingering for new rows."""
        self._stopping.set()
        with self._arrived:
            self._arrived.notify_all()

    def drain(self, *, limit: int = 200) -> int:
        """Send up to `limit` due messages; returns how many were delivered. Safe to call from
        several threads, processes and hosts at once."""
        budget = _Budget(limit)
        if self.concurrency == 1:
            return self._work(budget)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="relay") as pool:
            return sum(pool.map(lambda _: self._work(budget), range(self.concurrency)))

    def _work(self, budget: _Budget) -> int:
        """One drain thread: claim, send, repeat; linger briefly when rows are nearly due."""
        delivered, idle_since = 0, None
        while not self._stopping.is_set() and budget.take():
            nudges = self._nudges
            claim, wait = self._claim()
            if claim is not None:
                idle_since = None
                delivered += self._process(claim)
                continue
            budget.give_back()
            now = time.monotonic()
            idle_since = idle_since or now
            if wait is None or now - idle_since + wait > self.linger:
                break
            with self._arrived:
                if self._nudges == nudges and not self._stopping.is_set():  # nothing new
                    self._arrived.wait(wait)
        return delivered

    # --- claim -------------------------------------------------------------------------------

    def _claim(self) -> tuple[_Claim | None, float | None]:
        """A claimed row, or None and how many seconds until one may be claimable (None:
        nothing is waiting on time)."""
        now = self.clock.now()
        wait: float | None = None

        def soon(seconds: float) -> None:
            nonlocal wait
            wait = seconds if wait is None else min(wait, seconds)

        with transaction(self.engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                {"key": CLAIM_LOCK_KEY})
            rows = session.execute(
                sa_select(col(OutboxMessage.id), col(OutboxMessage.status),
                          col(OutboxMessage.destination_kind), col(OutboxMessage.destination),
                          col(OutboxMessage.message_key), col(OutboxMessage.next_attempt_at),
                          col(OutboxMessage.claimed_at), col(OutboxMessage.attempts))
                .where(col(OutboxMessage.status).in_(_UNFINISHED))
                .order_by(col(OutboxMessage.id)).limit(CLAIM_WINDOW)
            ).all()
            roots = _root_channels(session, [r.destination for r in rows
                                             if r.destination_kind == DestinationKind.thread])

            def lane(kind: str, destination: str) -> str:
                """The Slack conversation the row posts into (one message in flight each)."""
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
                    candidate = r.claimed_at is None or r.claimed_at <= now - self.lease
                else:
                    candidate = (
                        not waits_on & blocked
                        and (r.destination_kind != DestinationKind.thread
                             or r.destination in roots)
                        and self._ready(r.next_attempt_at, conversation, busy, now, soon)
                    )
                blocked |= keys
                if not candidate:
                    continue
                # Conditional claim: `attempts` is the row's version, bumped by every claim.
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
                return _Claim(
                    id=row.id, attempts=r.attempts + 1, claimed_at=now,
                    kind=row.destination_kind, destination=row.destination,
                    case_id=row.case_id, payload=dict(row.payload), alert=row.alert,
                    verify=r.status == OutboxStatus.sending
                    or (row.error or "").startswith(UNCERTAIN),
                    lane=conversation,
                ), None
        return None, wait

    @contextmanager
    def _posting(self, claim: _Claim) -> Iterator[None]:
        """Pace from the end of a post (answered or failed): the conversation's next post
        leaves `pace` later, so it cannot reach Slack sooner than that after this one did."""
        try:
            yield
        finally:
            self._last_post[claim.lane] = time.monotonic()

    def _ready(self, due: datetime | None, conversation: str, busy: set[str], now: datetime,
               soon: Callable[[float], None]) -> bool:
        """Whether a pending row may go now, as far as time and its conversation go; if not,
        tell `soon` when to look again."""
        if due is not None and due > now:
            soon((due - now).total_seconds())
            return False
        if conversation in busy:
            soon(POLL)
            return False
        paced = self._last_post.get(conversation, -math.inf) + self.pace - time.monotonic()
        if paced > 0:
            soon(paced)
            return False
        return True

    # --- one message -------------------------------------------------------------------------

    def _process(self, claim: _Claim) -> bool:
        try:
            ts, channel, posted = self._deliver(claim)
        except _Retry as retry:
            self._retry(claim, retry)
            metrics.sent(PLATFORM, "retry")
            return False
        except _Dead as dead:
            self._dead(claim, dead.code)
            metrics.sent(PLATFORM, "dead")
            return False
        except _Lost:
            log.warning("outbox %s: claim taken over by another relay; left to it", claim.id)
            return False
        except Exception:
            log.exception("outbox %s: unexpected failure", claim.id)
            self._retry(claim, _Retry("internal_error", uncertain=True))
            metrics.sent(PLATFORM, "retry")
            return False
        done = self._sent(claim, ts, channel, posted=posted)
        metrics.sent(PLATFORM, "sent" if done else "lost")
        return done

    def _deliver(self, claim: _Claim) -> tuple[str, str, bool]:
        """(ts, channel, whether this is the message's first post)."""
        try:
            message = Message.from_dict(claim.payload)
            body: dict[str, Any] = {"text": fallback_text(message),
                                    "blocks": message_blocks(message)}
        except (KeyError, TypeError, ValueError) as error:
            raise _Dead("invalid_payload") from error
        known = self._known(message.key)
        if known is not None:  # a later version: update in place (idempotent)
            with self._posting(claim):
                self._call(self.api.chat_update, unverified=False, ambiguous=False,
                           channel=known.channel, ts=known.ts, **body)
            return known.ts, known.channel, False
        channel, thread_ts = self._where(claim)
        if claim.verify:
            found = self._find(claim, channel, thread_ts)
            if found is not None:
                log.warning("outbox %s: an earlier attempt reached Slack (ts %s); not re-sent",
                            claim.id, found)
                return found, channel, True
        self._renew(claim)
        with self._posting(claim):
            response = self._call(
                self.api.chat_postMessage, unverified=False, ambiguous=True,
                channel=channel, thread_ts=thread_ts, **body,
                metadata={"event_type": EVENT_TYPE, "event_payload": {"outbox_id": claim.id}},
            )
        return str(response["ts"]), str(response.get("channel") or channel), True

    def _where(self, claim: _Claim) -> tuple[str, str | None]:
        """(channel, thread ts) a new post goes to."""
        kind = DestinationKind(claim.kind)
        if kind is DestinationKind.thread:
            root = self._known(f"{claim.destination}:root")
            if root is None:  # claims wait for the root; only a vanished root gets here
                raise _Retry("root_not_posted", uncertain=claim.verify)
            return root.channel, root.ts
        if kind is DestinationKind.dm:
            response = self._call(self.api.conversations_open, unverified=claim.verify,
                                  ambiguous=False, users=claim.destination)
            return str(response["channel"]["id"]), None
        if kind is DestinationKind.channel:
            return claim.destination, None
        raise _Dead(f"invalid_payload: destination kind {claim.kind}")

    def _find(self, claim: _Claim, channel: str, thread_ts: str | None) -> str | None:
        """The ts of a message carrying this row's outbox id, among the newest messages of the
        channel (or of the thread)."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page: dict[str, Any] = {"channel": channel, "include_all_metadata": True,
                                    "limit": HISTORY_PAGE, "cursor": cursor}
            if thread_ts is None:
                response = self._call(self.api.conversations_history, unverified=True,
                                      ambiguous=False, **page)
            else:
                response = self._call(self.api.conversations_replies, unverified=True,
                                      ambiguous=False, ts=thread_ts, **page)
            for message in response.get("messages") or []:
                if _outbox_id(message) == claim.id:
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or not cursor:
                break
        return None

    def _call(self, method: Callable[..., SlackResponse], *, unverified: bool, ambiguous: bool,
              **kwargs: Any) -> SlackResponse:
        """Call Slack; turn failures into _Retry / _Dead. `unverified`: the row may already be
        in Slack before this call; `ambiguous`: this call may have taken effect if it fails."""
        try:
            return method(**kwargs)
        except SlackApiError as error:
            response = error.response
            data = response.data if isinstance(response.data, dict) else {}
            status = int(response.status_code or 0)
            code = str(data.get("error") or f"http_{status}")
            if status == 429 or code == "ratelimited":
                raise _Retry("ratelimited", uncertain=unverified,
                             delay=_retry_after(response.headers)) from error
            if status >= 500:
                code = f"http_{status}"
            elif code in PERMANENT_ERRORS:
                raise _Dead(code) from error
            raise _Retry(code, uncertain=unverified or ambiguous) from error
        except (OSError, HTTPException) as error:
            code = "timeout" if _is_timeout(error) else f"connection_error: {type(error).__name__}"
            raise _Retry(code, uncertain=unverified or ambiguous) from error

    def _known(self, key: str | None) -> PlatformMessage | None:
        if key is None:
            return None
        with Session(self.engine) as session:
            return session.get(PlatformMessage, key)

    # --- finish ------------------------------------------------------------------------------

    def _mine(self, claim: _Claim) -> Any:
        """The WHERE clause that matches the row only while this claim holds it."""
        return ((col(OutboxMessage.id) == claim.id)
                & (col(OutboxMessage.status) == OutboxStatus.sending.value)
                & (col(OutboxMessage.attempts) == claim.attempts))

    def _renew(self, claim: _Claim) -> None:
        """Before a post, make sure the claim is still ours and fresh (lookups take time)."""
        now = self.clock.now()
        if now - claim.claimed_at < self.lease / 4:
            return
        with transaction(self.engine) as session:
            won = session.execute(
                update(OutboxMessage).where(self._mine(claim)).values(claimed_at=now)
            ).rowcount  # type: ignore[attr-defined]
        if won != 1:
            raise _Lost()

    def _sent(self, claim: _Claim, ts: str, channel: str, *, posted: bool) -> bool:
        now = self.clock.now()
        with transaction(self.engine) as session:
            won = session.execute(
                update(OutboxMessage).where(self._mine(claim))
                .values(status=OutboxStatus.sent.value, sent_at=now, platform_ref=ts,
                        error=None, next_attempt_at=None)
            ).rowcount  # type: ignore[attr-defined]
            if won != 1:
                log.warning("outbox %s: sent (ts %s) after losing the claim", claim.id, ts)
                return False
            key = claim.payload.get("key")
            if posted and key is not None:
                session.merge(PlatformMessage(message_key=str(key), channel=channel, ts=ts,
                                              updated_at=now))
        return True

    def _retry(self, claim: _Claim, retry: _Retry) -> None:
        now = self.clock.now()
        delay = retry.delay if retry.delay is not None else backoff(claim.attempts,
                                                                    self.max_backoff)
        error = (UNCERTAIN if retry.uncertain else "") + retry.code
        log.warning("outbox %s to %s failed (%s); next attempt in %ss", claim.id,
                    claim.destination, error, delay.total_seconds())
        with transaction(self.engine) as session:
            session.execute(
                update(OutboxMessage).where(self._mine(claim))
                .values(status=OutboxStatus.pending.value, next_attempt_at=now + delay,
                        error=error)
            )

    def _dead(self, claim: _Claim, code: str) -> None:
        now = self.clock.now()
        log.error("outbox %s to %s dead-lettered: %s", claim.id, claim.destination, code)
        with transaction(self.engine) as session:
            won = session.execute(
                update(OutboxMessage).where(self._mine(claim))
                .values(status=OutboxStatus.dead.value, error=code, next_attempt_at=None)
            ).rowcount  # type: ignore[attr-defined]
            if won != 1:
                return
            # An alert that itself dies alerts no one: no loop of alerts about alerts.
            admins = [] if claim.alert else _admins(session)
            alert = dead_letter_alert(claim.id, claim.case_id, code)
            for admin in admins:
                session.add(OutboxMessage(
                    created_at=now, case_id=claim.case_id,
                    destination_kind=DestinationKind.dm.value, destination=admin,
                    payload=alert.to_dict(), alert=True,
                ))
            record.append(
                session, at=now, actor=ACTOR, kind="state", action="outbox.dead_letter",
                case_id=claim.case_id,
                payload={"outbox_id": claim.id, "error": code, "attempts": claim.attempts,
                         "destination_kind": claim.kind, "alert": claim.alert,
                         "alerted": admins},
            )


def dead_letter_alert(outbox_id: int, case_id: str | None, code: str) -> Message:
    """What admins are told: which outbox row and case, and why; never the message itself."""
    about = f" for case {case_id}" if case_id else ""
    return Message(
        title="Slack message not delivered",
        text=f"Outbox message {outbox_id}{about} could not be delivered to Slack and will not "
             f"be retried. Slack answered: `{code}`.",
        notes=("The record holds an outbox.dead_letter entry for it.",),
    )


def backoff(attempts: int, cap: timedelta = MAX_BACKOFF) -> timedelta:
    """1 s after the first attempt, 2 s after the second, then 4 s, 8 s, ... at most `cap`."""
    exponent = min(max(attempts - 1, 0), 20)
    return min(timedelta(seconds=2 ** exponent), cap)


def _root_channels(session: Session, case_ids: Sequence[str]) -> dict[str, str]:
    """Case id -> channel of its posted root message, for the thread rows given."""
    keys = {f"{case_id}:root" for case_id in case_ids}
    if not keys:
        return {}
    found = session.exec(
        select(PlatformMessage).where(col(PlatformMessage.message_key).in_(keys))
    ).all()
    return {pm.message_key.removesuffix(":root"): pm.channel for pm in found}


def _admins(session: Session) -> list[str]:
    return list(session.exec(
        select(PersonRole.user_id)
        .join(Person, col(Person.user_id) == col(PersonRole.user_id))
        .where(PersonRole.role == Role.admin.value, col(Person.active).is_(True))
        .order_by(col(PersonRole.user_id))
    ).all())


def _outbox_id(message: dict[str, Any]) -> int | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != EVENT_TYPE:
        return None
    value = (metadata.get("event_payload") or {}).get("outbox_id")
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _seconds(value: object) -> float | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        seconds = float(str(value))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _header(headers: Any, name: str) -> object:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == name:
            return value
    return None


def _retry_after(headers: Any) -> timedelta:
    seconds = _seconds(_header(headers, "retry-after"))
    return min(timedelta(seconds=1 if seconds is None else seconds), MAX_RETRY_AFTER)


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, URLError) and isinstance(error.reason, BaseException):
        return _is_timeout(error.reason)
    return isinstance(error, TimeoutError)


# --- the relay's copy of the client ------------------------------------------------------------


def relay_client(client: WebClient) -> WebClient:
    """The given client without any of the SDK's retry handlers: the relay owns every retry
    (R6). A handler retries inside the call, before the relay can look in the channel's
    history: a 5xx from a post Slack had in fact stored was posted twice (ServerError), a
    Retry-After was slept through by a drain thread that could serve other conversations
    (RateLimit). A failed call comes back to the relay, which backs off, and before posting
    again looks for the message by its outbox id when the failed attempt may have landed."""
    relayed = copy.copy(client)
    relayed.retry_handlers = []
    return relayed
