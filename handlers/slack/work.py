"""The pool that does a Slack request's work once Bolt has answered it.

Bolt answers (acks) a command or a click in the request's own thread, as soon as the listener
has called `ack()` and handed the rest here; the core's work runs on one of `WORK_THREADS`
threads. An ack never waits for a free worker, and no request thread has to poll for one (Bolt
does that, every 10 ms, when listeners run in its pool instead); the number of interactions in
flight stays bounded, so that under load they do not slow each other down further."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

WORK_THREADS = 5


class ContextExecutor(ThreadPoolExecutor):
    """Runs each piece of work with the log context (request id, platform) of the request that
    queued it; logs what a piece of work raised (nothing else would see it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        context = contextvars.copy_context()
        with self._idle:
            self._in_flight += 1
        future = super().submit(context.run, fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future[Any]) -> None:
        if not future.cancelled() and (error := future.exception()) is not None:
            log.error("Slack work failed", exc_info=error)
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Until no work is queued or running (tests wait on this instead of sleeping)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)


def work_pool() -> ContextExecutor:
    return ContextExecutor(max_workers=WORK_THREADS, thread_name_prefix="slack-work")
