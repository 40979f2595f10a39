"""The outbox relay's own thread in each process. It delivers as soon as a transaction in this
process that queued outgoing messages has committed, and otherwise every `interval` seconds:
the fallback for rows queued elsewhere (another replica, a separate worker) or waiting out a
back-off. Delivery runs in these threads only, never in a thread answering Slack, so an
interaction waits neither for Slack posts nor behind other interactions' outbox claims."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from storage.models import OutboxMessage

log = logging.getLogger(__name__)
_QUEUED = "noticebot.outbox_queued"  # Session.info key: this transaction added outbox rows


class OutboxWatch:
    """Calls `on_queued` right after each commit on `engine` whose transaction added outbox
    rows (a rolled-back one calls nothing). Listens on every Session in the process while
    started, so it is to be stopped by whoever started it."""

    def __init__(self, engine: Engine, on_queued: Callable[[], None]) -> None:
        self.engine = engine
        self.on_queued = on_queued
        self._listening = False

    def start(self) -> None:
        if not self._listening:
            for name, listener in self._listeners():
                event.listen(Session, name, listener)
            self._listening = True

    def stop(self) -> None:
        if self._listening:
            for name, listener in self._listeners():
                event.remove(Session, name, listener)
            self._listening = False

    def _listeners(self) -> list[tuple[str, Callable[..., None]]]:
        return [("after_flush", self._flushed), ("after_commit", self._committed),
                ("after_rollback", self._rolled_back)]

    def _flushed(self, session: Session, _context: Any) -> None:
        # After a flush `session.new` still lists what the flush inserted.
        if session.bind is self.engine and any(isinstance(o, OutboxMessage)
                                               for o in session.new):
            session.info[_QUEUED] = True

    def _committed(self, session: Session) -> None:
        # Releasing a savepoint fires after_commit too; the rows are visible to a relay only
        # once the outermost transaction has committed.
        if session.get_nested_transaction() is None and session.info.pop(_QUEUED, False):
            self.on_queued()

    def _rolled_back(self, session: Session) -> None:
        if session.get_nested_transaction() is None:  # a savepoint's rows may be all it undid
            session.info.pop(_QUEUED, None)


class RelayLoop:
    """Runs `deliver` whenever woken (`wake`, or a commit that queued outbox rows on `engine`)
    and, unless `interval` is None, at least every `interval` seconds.

    A pass may be lingering for a row Slack's pace holds back, and a message just queued for
    another conversation must not wait for that: each wake calls `nudge` (the relay's, which
    makes its lingering threads look again at once) and starts a pass right away, alongside
    passes still under way, up to `parallel` of them. With all `parallel` passes busy, wakes
    are folded into one more pass as soon as one ends, so nothing queued meanwhile waits for
    the next tick. `deliver` must be safe to run in several threads at once (the relay is)."""

    def __init__(self, deliver: Callable[[], object], *, engine: Engine | None,
                 interval: float | None = 5.0, parallel: int = 2,
                 nudge: Callable[[], None] | None = None) -> None:
        self.deliver = deliver
        self.nudge = nudge
        self.interval = interval
        self.parallel = max(1, parallel)
        self.watch = OutboxWatch(engine, self.wake) if engine is not None else None
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._slots = threading.Semaphore(self.parallel)
        self._passes: list[threading.Thread] = []
        self._thread: threading.Thread | None = None

    def start(self) -> RelayLoop:
        if self._thread is None:
            if self.watch is not None:
                self.watch.start()
            self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
            self._thread.start()
        return self

    def alive(self) -> bool:
        """Whether the loop runs (started, not stopped, its thread not dead)."""
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wanted.set()
        if self.nudge is not None:
            self.nudge()

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening and starting passes; wait for the passes under way, if any."""
        if self.watch is not None:
            self.watch.stop()
        self._stopping.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for running in list(self._passes):
            running.join(timeout)

    def _run(self) -> None:
        while True:
            self._wanted.wait(self.interval)
            self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                return
            self._wanted.clear()  # before the pass starts: a later wake means another pass
            self._passes = [t for t in self._passes if t.is_alive()]
            running = threading.Thread(target=self._pass, name="outbox-relay-pass", daemon=True)
            self._passes.append(running)
            running.start()

    def _pass(self) -> None:
        try:
            self.deliver()
        except Exception:  # the next wake or tick tries again; rows stay in the outbox
            log.exception("outbox delivery failed")
        finally:
            self._slots.release()
