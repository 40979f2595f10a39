"""A transport for the core's delivery tests: records every call, fails on request."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.delivery.port import Address, Dead, Pacing, Platform, Posted, Recipient, Retry
from bot.messages import Message


@dataclass
class Call:
    method: str
    conversation: str
    thread: str | None = None
    ref: str | None = None
    outbox_id: int | None = None
    text: str = ""
    at: float = field(default_factory=time.monotonic)


class FakeTransport:
    """Posts land in `calls`; `fail_next(method, error)` makes the next call of `method` raise
    (`Retry` / `Dead`) — `landed=True` makes a failed post land first (a timeout after the
    platform stored it)."""

    can_find: bool

    def __init__(self, platform: Platform = Platform.slack, *, can_find: bool = True,
                 pacing: Pacing | None = None) -> None:
        self.platform = platform
        self.can_find = can_find
        self.pacing = pacing or Pacing(per_conversation=0.0)
        self.calls: list[Call] = []
        self.posts: dict[int, str] = {}  # outbox id -> ref, for `find`
        self.opened: list[str] = []  # whose 1:1 conversations were asked for
        self._failures: dict[str, list[tuple[Exception, bool]]] = {}
        self._refs = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, method: str, error: Exception, *, landed: bool = False) -> None:
        self._failures.setdefault(method, []).append((error, landed))

    def _fail(self, method: str) -> tuple[Exception, bool] | None:
        with self._lock:
            queued = self._failures.get(method)
            return queued.pop(0) if queued else None

    def post(self, *, to: Address, message: Message, outbox_id: int,
             people: Mapping[str, Recipient]) -> Posted:
        failure = self._fail("post")
        if failure is not None and not failure[1]:
            raise failure[0]
        ref = f"ref{next(self._refs)}"
        with self._lock:
            self.posts[outbox_id] = ref
            self.calls.append(Call("post", to.conversation, to.thread, ref, outbox_id,
                                   message.text))
        if failure is not None:
            raise failure[0]
        return Posted(conversation=to.conversation, ref=ref)

    def update(self, *, posted: Posted, message: Message,
               people: Mapping[str, Recipient]) -> None:
        failure = self._fail("update")
        if failure is not None:
            raise failure[0]
        with self._lock:
            self.calls.append(Call("update", posted.conversation, ref=posted.ref,
                                   text=message.text))

    def open_dm(self, *, recipient: Recipient) -> str:
        failure = self._fail("open_dm")
        if failure is not None:
            raise failure[0]
        with self._lock:
            self.opened.append(recipient.identity)
        return f"D-{recipient.identity}"

    def find(self, *, to: Address, outbox_id: int) -> str | None:
        with self._lock:
            self.calls.append(Call("find", to.conversation, to.thread, outbox_id=outbox_id))
            return self.posts.get(outbox_id) if self.can_find else None

    def posted(self) -> list[Call]:
        return [c for c in self.calls if c.method == "post"]


__all__ = ["Call", "Dead", "FakeTransport", "Retry"]
