"""Deliver one platform's outbox rows exactly once, from any number of loops (spec R6, P5).

Each message goes through three short steps; no transaction is held across a platform call.

1. Claim (bot/delivery/claims.py): one due row of this loop's platform, in order.
2. Send, outside any transaction, through the platform's `Transport`. A keyed message already
   posted is updated in place; a new post carries its outbox id where the platform keeps it.
3. Finish. Sent: `platform_ref` keeps the platform's ref, and a keyed message's first post is
   remembered (per platform) so later versions update it in place. `Retry`: back to pending
   until its delay (Retry-After) or an exponential back-off. `Dead`: the row is dead-lettered,
   with a record entry and a DM alert to every admin. A `Retry` for the bot's own credentials
   keeps the row waiting and, if it lasts, tells the admins (bot/delivery/credentials.py).

Throughput (P5): a drain runs `concurrency` threads, each claiming and sending one row at a
time, so a slow answer holds up only its own conversation. Each loop paces itself (the
transport's `Pacing`: seconds between posts into one conversation, and optionally requests per
second across the platform) rather than learning the limits from 429s, and a drain lingers up
to `linger` seconds for rows about to become due instead of leaving them to the next tick.

A new post is never re-sent blindly after a takeover or after an attempt that may have reached
the platform: where the transport can look (`can_find`) the row's earlier post is searched for
first, and if there is one the row is marked sent with its ref. Updates are idempotent and are
simply sent again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import select

from bot.clock import Clock
from bot.delivery import claims
from bot.delivery.alerts import ACTOR, Told, platform_name, tell_admins
from bot.delivery.claims import UNCERTAIN, Claim
from bot.delivery.credentials import CredentialsWatch
from bot.delivery.people import recipient, recipients
from bot.delivery.port import Address, Dead, Posted, Retry, Transport
from bot.messages import DestinationKind, Message
from bot.ops import metrics
from config.platforms import Platform
from storage import dm_conversations, record
from storage.db import reading, transaction
from storage.models import OutboxMessage, OutboxStatus, PlatformMessage

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=5)
CONCURRENCY = 4  # rows in flight per loop (never two in one conversation)
LINGER = 2.0  # seconds a drain waits for rows about to become due before returning
POLL = 0.05  # seconds between looks while a conversation is busy with another row


class _Lost(Exception):
    """The claim was taken over by another loop (this one outlived its lease)."""


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


class _Bucket:
    """At most `rate` platform requests per second across this loop's threads."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 0.0 if not rate else 1.0 / rate
        self.next = 0.0
        self.lock = threading.Lock()

    def take(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            at = max(self.next, now)
            self.next = at + self.interval
        if at > now:
            time.sleep(at - now)


class Delivery:
    """The delivery loop of one platform: `drain` sends its due outbox rows through
    `transport`. Safe to run in several threads, processes and hosts at once."""

    def __init__(self, *, engine: Engine, transport: Transport, clock: Clock,
                 lease: timedelta = LEASE, max_backoff: timedelta = MAX_BACKOFF,
                 pace: float | None = None, concurrency: int = CONCURRENCY,
                 linger: float = LINGER, need_root: bool = True,
                 alert_on: tuple[Platform, ...] = ()) -> None:
        self.engine = engine
        # Where admins hear of a dead letter: every platform the deployment delivers to (an
        # admin on Slack only must hear of a Teams failure); this loop's own by default.
        self.alert_on = alert_on or (transport.platform,)
        # Whether a thread reply waits for its root's post (the console's threads are named by
        # their case, so a console on a shared database prints replies to Slack-opened cases).
        self.need_root = need_root
        self.transport = transport
        self.platform = transport.platform
        self.clock = clock
        self.lease = lease
        self.max_backoff = max_backoff
        self.pace = transport.pacing.per_conversation if pace is None else pace
        self.concurrency = max(1, concurrency)
        self.linger = linger
        self._bucket = _Bucket(transport.pacing.per_second)
        # Conversation -> when this loop last posted into it (monotonic seconds: platforms'
        # limits run on real time, whatever clock the loop is given).
        self._last_post: dict[str, float] = {}
        # Lingering threads wait on this; `nudge` (new rows queued) wakes them early.
        self._arrived = threading.Condition()
        self._nudges = 0
        self._stopping = threading.Event()
        self.credentials = CredentialsWatch(engine=engine, clock=clock, platform=self.platform,
                                            alert_on=self.alert_on)

    def nudge(self) -> None:
        """New rows were queued: threads lingering in a drain look again at once."""
        with self._arrived:
            self._nudges += 1
            self._arrived.notify_all()

    def stop(self) -> None:
        """The process is stopping: drains finish the message in hand and claim no more (the
        rest stays in the outbox for the next loop), instead of lingering for new rows."""
        self._stopping.set()
        with self._arrived:
            self._arrived.notify_all()

    def drain(self, *, limit: int = 200) -> int:
        """Send up to `limit` due messages; returns how many were delivered."""
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
            claim, wait = claims.claim(self.engine, self.platform, now=self.clock.now(),
                                       lease=self.lease, ready=self._ready,
                                       need_root=self.need_root)
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

    @contextmanager
    def _posting(self, claim: Claim) -> Iterator[None]:
        """Pace from the end of a post (answered or failed): the conversation's next post
        leaves `pace` later, so it cannot reach the platform sooner than that after this one."""
        self._bucket.take()
        try:
            yield
        finally:
            self._last_post[claim.lane] = time.monotonic()

    # --- one message -------------------------------------------------------------------------

    def _process(self, claim: Claim) -> bool:
        name = self.platform.value
        wait = self.credentials.postpone()
        if wait is not None:  # the platform refuses our credentials: another row is asking
            self._postpone(claim, wait)
            return False
        try:
            posted, first = self._deliver(claim)
        except Retry as retry:
            self._retry(claim, retry)
            metrics.sent(name, "retry")
            if retry.credentials:
                self.credentials.refused(retry.code)
            return False
        except Dead as dead:
            self._dead(claim, dead.code)
            metrics.sent(name, "dead")
            return False
        except _Lost:
            log.warning("outbox %s: claim taken over by another relay; left to it", claim.id)
            return False
        except Exception:
            log.exception("outbox %s: unexpected failure", claim.id)
            self._retry(claim, Retry("internal_error", uncertain=True))
            metrics.sent(name, "retry")
            return False
        self.credentials.accepted()
        done = self._sent(claim, posted, first=first)
        metrics.sent(name, "sent" if done else "lost")
        return done

    def _deliver(self, claim: Claim) -> tuple[Posted, bool]:
        """Where the message ended up, and whether this is its first post."""
        try:
            message = Message.from_dict(claim.payload)
        except (KeyError, TypeError, ValueError) as error:
            raise Dead("invalid_payload") from error
        with reading(self.engine) as session:
            people = recipients(session, self.platform, message)
        known = self._known(message.key)
        if known is not None:  # a later version: update in place (idempotent)
            posted = Posted(conversation=known.channel, ref=known.ts)
            with self._posting(claim):
                self.transport.update(posted=posted, message=message, people=people)
            return posted, False
        try:
            to, kept = self._where(claim)
            found = self._find(claim, to) if claim.verify else None
        except Retry as retry:  # the row may already be out there if it was before
            raise Retry(retry.code, uncertain=retry.uncertain or claim.verify,
                        delay=retry.delay, credentials=retry.credentials) from retry
        if found is not None:
            log.warning("outbox %s: an earlier attempt reached %s (ref %s); not re-sent",
                        claim.id, platform_name(self.platform.value), found)
            return Posted(conversation=to.conversation, ref=found), True
        self._renew(claim)
        try:
            with self._posting(claim):
                posted = self.transport.post(to=to, message=message, outbox_id=claim.id,
                                             people=people)
        except Dead as dead:
            if kept is None:
                raise
            # A kept 1:1 conversation the platform refuses may be stale: forget it and try
            # once more through a newly opened one (a refused post was not delivered).
            with transaction(self.engine) as session:
                dm_conversations.forget(session, self.platform, kept, to.conversation)
            raise Retry(f"dm_refused:{dead.code}", uncertain=False, delay=timedelta(0)) from dead
        return posted, True

    def _where(self, claim: Claim) -> tuple[Address, str | None]:
        """Where a new post goes; for a DM through a conversation kept from before, also the
        recipient's platform id it is kept under."""
        try:
            kind = DestinationKind(claim.kind)
        except ValueError:
            raise Dead(f"invalid_payload: destination kind {claim.kind}") from None
        if kind is DestinationKind.thread:
            root = self._known(f"{claim.destination}:root")
            if root is None and not self.need_root:
                return Address(conversation=claim.destination, thread=claim.destination), None
            if root is None:  # claims wait for the root; only a vanished root gets here
                raise Retry("root_not_posted", uncertain=claim.verify)
            return Address(conversation=root.channel, thread=root.ts), None
        if kind is DestinationKind.dm:
            return self._dm(claim.destination)
        return Address(conversation=claim.destination), None

    def _dm(self, user_id: str) -> tuple[Address, str | None]:
        """The person's 1:1 conversation: the one kept from before, or one the platform opens
        now (then kept, so other loops and later processes do not ask again)."""
        with reading(self.engine) as session:
            person = recipient(session, self.platform, user_id)
            kept = None if person is None else dm_conversations.known(
                session, self.platform, person.identity)
        if person is None:
            raise Dead("no_identity")
        if kept is not None:
            return Address(conversation=kept), person.identity
        self._bucket.take()
        conversation = self.transport.open_dm(recipient=person)
        with transaction(self.engine) as session:
            dm_conversations.remember(session, self.platform, person.identity, conversation,
                                      at=self.clock.now())
        return Address(conversation=conversation), None

    def _find(self, claim: Claim, to: Address) -> str | None:
        if not self.transport.can_find:
            return None
        self._bucket.take()
        try:
            return self.transport.find(to=to, outbox_id=claim.id)
        except Retry as retry:  # a look that fails leaves the row as uncertain as it was
            raise Retry(retry.code, uncertain=True, delay=retry.delay,
                        credentials=retry.credentials) from retry

    def _known(self, key: str | None) -> PlatformMessage | None:
        if key is None:
            return None
        with reading(self.engine) as session:
            return session.exec(
                select(PlatformMessage).where(PlatformMessage.message_key == key,
                                              PlatformMessage.platform == self.platform.value)
            ).first()

    # --- finish ------------------------------------------------------------------------------

    def _renew(self, claim: Claim) -> None:
        """Before a post, make sure the claim is still ours and fresh (lookups take time)."""
        now = self.clock.now()
        if now - claim.claimed_at < self.lease / 4:
            return
        with transaction(self.engine) as session:
            won = session.execute(
                update(OutboxMessage).where(claims.mine(claim)).values(claimed_at=now)
            ).rowcount  # type: ignore[attr-defined]
        if won != 1:
            raise _Lost()

    def _sent(self, claim: Claim, posted: Posted, *, first: bool) -> bool:
        now = self.clock.now()
        with transaction(self.engine) as session:
            won = session.execute(
                update(OutboxMessage).where(claims.mine(claim))
                .values(status=OutboxStatus.sent.value, sent_at=now, platform_ref=posted.ref,
                        error=None, next_attempt_at=None)
            ).rowcount  # type: ignore[attr-defined]
            if won != 1:
                log.warning("outbox %s: sent (ref %s) after losing the claim", claim.id,
                            posted.ref)
                return False
            key = claim.payload.get("key")
            if first and key is not None:
                session.merge(PlatformMessage(message_key=str(key), platform=self.platform,
                                              channel=posted.conversation, ts=posted.ref,
                                              updated_at=now))
        return True

    def _retry(self, claim: Claim, retry: Retry) -> None:
        now = self.clock.now()
        delay = retry.delay if retry.delay is not None else backoff(claim.attempts,
                                                                    self.max_backoff)
        error = (UNCERTAIN if retry.uncertain else "") + retry.code
        log.warning("outbox %s to %s failed (%s); next attempt in %ss", claim.id,
                    claim.destination, error, delay.total_seconds())
        with transaction(self.engine) as session:
            session.execute(
                update(OutboxMessage).where(claims.mine(claim))
                .values(status=OutboxStatus.pending.value, next_attempt_at=now + delay,
                        error=error)
            )

    def _postpone(self, claim: Claim, delay: timedelta) -> None:
        """Back to pending untried, as it was (its error, and whether it may be out there)."""
        with transaction(self.engine) as session:
            session.execute(
                update(OutboxMessage).where(claims.mine(claim))
                .values(status=OutboxStatus.pending.value,
                        next_attempt_at=self.clock.now() + delay))

    def _dead(self, claim: Claim, code: str) -> None:
        now = self.clock.now()
        log.error("outbox %s to %s dead-lettered: %s", claim.id, claim.destination, code)
        with transaction(self.engine) as session:
            won = session.execute(
                update(OutboxMessage).where(claims.mine(claim))
                .values(status=OutboxStatus.dead.value, error=code, next_attempt_at=None)
            ).rowcount  # type: ignore[attr-defined]
            if won != 1:
                return
            # An alert that itself dies alerts no one: no loop of alerts about alerts.
            told = Told() if claim.alert else tell_admins(
                session, now=now, platforms=self.alert_on, case_id=claim.case_id,
                message=dead_letter_alert(claim.id, claim.case_id, code, self.platform.value))
            if told.not_reachable and not told.alerted:
                log.error("no admin can be told of dead letter %s: none is reachable on %s",
                          claim.id, ", ".join(p.value for p in self.alert_on))
            record.append(
                session, at=now, actor=ACTOR, kind="state", action="outbox.dead_letter",
                case_id=claim.case_id,
                payload={"outbox_id": claim.id, "error": code, "attempts": claim.attempts,
                         "destination_kind": claim.kind, "alert": claim.alert,
                         **told.for_record()},
            )


def dead_letter_alert(outbox_id: int, case_id: str | None, code: str,
                      platform: str = "slack") -> Message:
    """What admins are told: which outbox row and case, and why; never the message itself."""
    about = f" for case {case_id}" if case_id else ""
    name, named = platform_name(platform), platform_name(platform, capital=True)
    return Message(
        title=f"{named} message not delivered",
        text=f"Outbox message {outbox_id}{about} could not be delivered to {name} and will "
             f"not be retried. {named} answered: `{code}`.",
        notes=("The record holds an outbox.dead_letter entry for it.",),
    )


def backoff(attempts: int, cap: timedelta = MAX_BACKOFF) -> timedelta:
    """1 s after the first attempt, 2 s after the second, then 4 s, 8 s, ... at most `cap`."""
    exponent = min(max(attempts - 1, 0), 20)
    return min(timedelta(seconds=2 ** exponent), cap)


def deliver_now(*, engine: Engine, transport: Transport, clock: Clock) -> int:
    """Deliver the due outbox rows of the transport's platform now, in order, one at a time,
    without waiting for a thread's root (the console's relay); returns how many were delivered."""
    loop = Delivery(engine=engine, transport=transport, clock=clock, pace=0.0, concurrency=1,
                    linger=0.0, need_root=False)
    delivered = 0
    while (batch := loop.drain(limit=500)) > 0:
        delivered += batch
    return delivered
