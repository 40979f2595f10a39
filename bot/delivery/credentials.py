"""Watching for a platform that refuses the bot's own credentials (a wrong or expired secret,
a certificate Entra no longer accepts, a bot registration deleted).

Such a failure is not one message's: every message to that platform waits until an admin
mends the credentials, so nothing is dead-lettered (nothing would be lost by waiting) and the
rows keep their back-off. What must not happen is that the wait goes unnoticed: once the
refusals have lasted `CREDENTIALS_GRACE` (a login service's blip passes unannounced), the admins
are told on the deployment's other platforms (the refusing one would deliver the alert only
once mended) and the record holds a `delivery.credentials_refused` entry; when a message gets
through again, `delivery.credentials_accepted` is recorded and the same admins are told.

Each process delivering to the platform watches its own calls, in memory, and they share the
telling through the database (`storage.outages`): of several processes (`noticebot teams`
workers, a worker), one tells of an outage's start and one of its end."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import Engine

from bot.clock import Clock
from bot.delivery.alerts import ACTOR, Told, platform_name, tell_admins
from bot.messages import Message
from config.platforms import Platform
from storage import outages, record
from storage.db import transaction

log = logging.getLogger(__name__)

CREDENTIALS_GRACE = timedelta(minutes=5)
# During an outage, one message in this long tries the platform; the rest wait.
PROBE_EVERY = timedelta(seconds=30)


class CredentialsWatch:
    def __init__(self, *, engine: Engine, clock: Clock, platform: Platform,
                 alert_on: tuple[Platform, ...], grace: timedelta = CREDENTIALS_GRACE,
                 probe_every: timedelta = PROBE_EVERY) -> None:
        self.engine = engine
        self.clock = clock
        self.platform = platform
        self.elsewhere = tuple(p for p in alert_on if p is not platform)
        self.grace = grace
        self.probe_every = probe_every
        self._lock = threading.Lock()  # a drain's threads report at once
        self._since: datetime | None = None  # the outage's first refusal
        self._told: Told | None = None  # the admins were told of this outage
        self._telling = False  # ... or are being told, by one thread
        self._outage = 0  # bumped when an outage ends: a telling that outlived it knows
        self._probed: datetime | None = None  # the last call let through meanwhile
        self._looked = False  # whether an outage told before this process began was ended
        # When to look again at the shared outage while refused: another process's calls may
        # have got through and ended it while this one's are still refused (its own secret).
        self._recheck_at: datetime | None = None

    def postpone(self) -> timedelta | None:
        """During an outage, how long a row should wait instead of calling the platform: one
        call in `probe_every` finds out whether the credentials work again, the others wait
        (thousands of rows would each ask for a token, or be refused, at every back-off)."""
        if self._since is None:  # the usual case: no lock taken
            return None
        now = self.clock.now()
        with self._lock:
            if self._since is None:
                return None
            if self._probed is None or now - self._probed >= self.probe_every:
                self._probed = now
                return None
            return self.probe_every

    def refused(self, code: str) -> None:
        """A call was refused for the bot's credentials (`Retry.credentials`)."""
        now = self.clock.now()
        with self._lock:
            self._since = self._since or now
            since, outage = self._since, self._outage
            if self._telling or now - since < self.grace:
                return
            if self._told is not None and (self._recheck_at is None or now < self._recheck_at):
                return
            self._telling = True  # another thread's refusal meanwhile does not tell again
        name = platform_name(self.platform.value, capital=True)
        log.error("%s refuses noticebot's credentials since %s (%s): nothing reaches %s until "
                  "they are mended", name, since.isoformat(), code, name)
        message = Message(
            title=f"{name} refuses noticebot's credentials",
            text=f"Since {since:%Y-%m-%d %H:%M} UTC no message has reached {name}: it answers "
                 f"`{code}`. Messages are kept and go out once the bot's credentials are "
                 "mended (its client secret or certificate, or its registration).",
            notes=("The record holds a delivery.credentials_refused entry.",))
        told: Told | None = None
        recheck_at = now + self.grace
        try:
            # None: told by another process already (or being told).
            told = self._tell("delivery.credentials_refused", message, since=since, now=now,
                              error=code) or Told()
        except Exception:  # the database as well: the next refusal tries again
            log.exception("could not tell the admins that %s refuses the credentials", name)
        with self._lock:
            self._telling = False
            over = self._outage != outage
            if not over:
                self._told, self._recheck_at = told, recheck_at
        # It ended while they were being told: say so too (or try again with the next call).
        if over and told is not None and not self._tell_accepted():
            with self._lock:
                self._looked = False

    def accepted(self) -> None:
        """A call went through: an outage is over. The admins hear it if they were told of it,
        by this process or another; the first call through after a start also ends one told
        before it (the process that told may be gone)."""
        if self._since is None and self._looked:  # the usual case: no lock taken
            return
        with self._lock:
            since, looked = self._since, self._looked
            self._since = self._told = self._recheck_at = None
            self._looked = True
            self._outage += 1
            self._probed = None
        if (since is not None or not looked) and not self._tell_accepted():
            with self._lock:
                self._looked = False  # the outage may still be open: end it next time

    def _tell_accepted(self) -> bool:
        """Ends a told outage, telling the admins; False if that could not be done."""
        name = platform_name(self.platform.value, capital=True)
        try:
            self._tell("delivery.credentials_accepted", None, since=None, now=self.clock.now())
        except Exception:  # the delivery itself is done; only the good news is not told
            log.exception("could not tell the admins that %s accepts the credentials", name)
            return False
        return True

    def _accepted_message(self, since: datetime) -> Message:
        name = platform_name(self.platform.value, capital=True)
        log.warning("%s accepts noticebot's credentials again (refused since %s)", name,
                    since.isoformat())
        return Message(
            title=f"{name} accepts noticebot's credentials again",
            text=f"Messages kept since {since:%Y-%m-%d %H:%M} UTC are going out to {name}.")

    def _tell(self, action: str, message: Message | None, *, since: datetime | None,
              now: datetime, **details: str) -> Told | None:
        """Tells the admins of the outage's start (`message`, `since`), or of its end (the
        message made from when it began), unless another process has: then None."""
        with transaction(self.engine) as session:
            if since is not None:
                if not outages.begin(session, self.platform, since=since):
                    return None
            else:
                began = outages.end(session, self.platform, at=now)
                if began is None:
                    return None
                since, message = began, self._accepted_message(began)
            assert message is not None
            told = tell_admins(session, now=now, platforms=self.elsewhere, message=message)
            if not told.alerted:
                log.error("no admin can be told on another platform than %s",
                          self.platform.value)
            record.append(session, at=now, actor=ACTOR, kind="state", action=action,
                          payload={"platform": self.platform.value,
                                   "since": since.isoformat(), **details,
                                   **told.for_record()})
        return told
