"""A fake Slack Web API on loopback: answers the methods noticebot uses, records every call with
its body, serves response_url, and injects 429 (with Retry-After), 5xx, permanent errors and
timeouts on demand or at random.

Posted messages are kept per channel (ts, thread_ts, metadata), so `conversations.history` and
`conversations.replies` answer like Slack's, and every stored message carrying noticebot's outbox
metadata is counted per outbox id: `deliveries` shows anything lost or duplicated. A message
whose response is delayed past the client's timeout is still stored (Slack did post it; the
client just never heard back), which is how a relay gets tempted to post twice."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

POSTING = ("chat.postMessage", "chat.update")
RELAY_METHODS = frozenset({"chat.postMessage", "chat.update", "conversations.history",
                           "conversations.replies", "conversations.open"})


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    # When the call reached the fake (time.monotonic(): comparable across processes on Linux).
    at: float = field(default_factory=time.monotonic)


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def outbox_id(self) -> int | None:
        payload = (self.metadata or {}).get("event_payload") or {}
        value = payload.get("outbox_id")
        return None if value is None else int(value)

    def as_slack(self, *, with_metadata: bool) -> dict[str, Any]:
        found: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text,
                                 "blocks": self.blocks, "user": "UBOT", "bot_id": "BBOT"}
        if self.thread_ts is not None:
            found["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata is not None:
            found["metadata"] = self.metadata
        return found


@dataclass
class Chaos:
    """Random trouble for the methods in `methods`: each call fails with these probabilities.
    A timeout answers only after `timeout_seconds` (set it above the client's timeout); a post
    that times out is stored anyway with probability `delivered_on_timeout`."""

    seed: int = 0
    rate_limited: float = 0.0
    server_error: float = 0.0
    timeout: float = 0.0
    delivered_on_timeout: float = 0.5
    retry_after: int = 1
    timeout_seconds: float = 1.0
    methods: frozenset[str] = RELAY_METHODS
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


@dataclass
class _Timeout:
    method: str
    seconds: float
    deliver: bool


@dataclass
class FakeSlack:
    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[str, int, dict[str, str], str, bool]] = field(default_factory=list)
    timeouts: list[_Timeout] = field(default_factory=list)
    # Posted messages per channel, in posting order, and how often each outbox id was stored.
    messages: dict[str, list[Posted]] = field(default_factory=dict)
    deliveries: Counter[int] = field(default_factory=Counter)
    # 429s the chaos injected, per channel (not those of the per-channel rate limit).
    injected_429: Counter[str] = field(default_factory=Counter)
    # A channel (or, for conversations.open, a user) answering every call with this error.
    channel_errors: dict[str, str] = field(default_factory=dict)
    # Slack allows about one post per second per channel; above this, 429 with Retry-After.
    rate_per_channel_per_second: float | None = None
    rate_retry_after: int = 1
    chaos: Chaos | None = None
    latency: float = 0.0  # seconds every relay call takes, after it has taken effect
    # Most posts to one channel that were being answered at the same time (timeouts aside),
    # and most posts to any channels at the same time.
    max_in_flight: int = 0
    max_in_flight_overall: int = 0
    # Called with each stored post before it is answered (a test can kill the poster there).
    after_post: Callable[[Posted], object] | None = None
    _in_flight: Counter[str] = field(default_factory=Counter)
    _recent: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _closing: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}response/{name}"

    def fail_next(self, method: str, status: int, headers: dict[str, str] | None = None,
                  *, error: str = "injected", deliver: bool = False) -> None:
        """The next call of `method` fails with this HTTP status (200 with `error` for Slack's
        ok:false answers); with `deliver` the call takes effect all the same (a 5xx from a
        gateway after Slack stored the post)."""
        with self._lock:
            self.failures.append((method, status, headers or {}, error, deliver))

    def timeout_next(self, method: str, *, seconds: float = 1.0, deliver: bool = True) -> None:
        """The next call of `method` answers only after `seconds`; with `deliver` a post is
        stored all the same (the client, having timed out, never learns its ts)."""
        with self._lock:
            self.timeouts.append(_Timeout(method, seconds, deliver))

    def of(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.body for c in self.calls if c.method == method]

    def posted(self, channel: str) -> list[Posted]:
        with self._lock:
            return list(self.messages.get(channel, []))

    def delivered(self) -> Counter[int]:
        with self._lock:
            return Counter(self.deliveries)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.02)
        raise AssertionError("fake Slack: condition not met in time")

    def close(self) -> None:
        """Wake answers held back as timeouts (the server is shut down by its owner)."""
        self._closing.set()

    # --- answering ---------------------------------------------------------------------------

    def answer(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        delay, posting_to, stored = 0.0, None, None
        with self._lock:
            self.calls.append(Call(method, body))
            for index, (name, status, headers, error, deliver) in enumerate(self.failures):
                if name == method:
                    del self.failures[index]
                    if deliver:
                        self._perform(method, body, f"1700000000.{next(self._ts):06d}")
                    return status, headers, {"ok": False, "error": error}
            timeout = next((t for t in self.timeouts if t.method == method), None)
            if timeout is not None:
                self.timeouts.remove(timeout)
            elif self.chaos is not None and method in self.chaos.methods:
                chaos, roll = self.chaos, self.chaos.rng.random()
                if roll < chaos.rate_limited:
                    self.injected_429[str(body.get("channel", ""))] += 1
                    return 429, {"Retry-After": str(chaos.retry_after)}, {
                        "ok": False, "error": "ratelimited"}
                roll -= chaos.rate_limited
                if roll < chaos.server_error:
                    return 503, {}, {"ok": False, "error": "service_unavailable"}
                roll -= chaos.server_error
                if roll < chaos.timeout:
                    timeout = _Timeout(method, chaos.timeout_seconds,
                                       chaos.rng.random() < chaos.delivered_on_timeout)
            target = str(body.get("users") if method == "conversations.open"
                         else body.get("channel", ""))
            if target in self.channel_errors and method in RELAY_METHODS:
                return 200, {}, {"ok": False, "error": self.channel_errors[target]}
            if method in POSTING and self._rate_limited(target):
                return 429, {"Retry-After": str(self.rate_retry_after)}, {
                    "ok": False, "error": "ratelimited"}
            if timeout is not None and not timeout.deliver:
                result: tuple[int, dict[str, str], Any] = (
                    503, {}, {"ok": False, "error": "timed_out"})
            else:
                result = self._perform(method, body, f"1700000000.{next(self._ts):06d}")
                if method == "chat.postMessage":
                    stored = self.messages[target][-1]
            if method in RELAY_METHODS:
                delay = self.latency
            if timeout is not None:
                delay = timeout.seconds
            elif method in POSTING:
                posting_to = target
                self._in_flight[target] += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight[target])
                self.max_in_flight_overall = max(self.max_in_flight_overall,
                                                 sum(self._in_flight.values()))
        try:
            if stored is not None and self.after_post is not None:
                self.after_post(stored)
            if delay:
                self._closing.wait(delay)
            return result
        finally:
            if posting_to is not None:
                with self._lock:
                    self._in_flight[posting_to] -= 1

    def _rate_limited(self, channel: str) -> bool:
        if self.rate_per_channel_per_second is None:
            return False
        now = time.monotonic()
        recent = self._recent.setdefault(channel, deque())
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        if len(recent) >= self.rate_per_channel_per_second:
            return True
        recent.append(now)
        return False

    def _perform(self, method: str, body: dict[str, Any],
                 ts: str) -> tuple[int, dict[str, str], Any]:
        """The call's effect (under the lock)."""
        if method == "auth.test":
            return 200, {}, {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1",
                             "url": "https://example.slack.com/"}
        if method == "chat.postMessage":
            channel = str(body.get("channel", ""))
            metadata = body.get("metadata")
            posted = Posted(channel=channel, ts=ts, text=str(body.get("text", "")),
                            blocks=list(body.get("blocks") or []),
                            thread_ts=body.get("thread_ts") or None,
                            metadata=metadata if isinstance(metadata, dict) else None)
            self.messages.setdefault(channel, []).append(posted)
            if posted.outbox_id is not None:
                self.deliveries[posted.outbox_id] += 1
            return 200, {}, {"ok": True, "channel": channel, "ts": ts}
        if method == "chat.update":
            channel = str(body.get("channel", ""))
            for posted in self.messages.get(channel, []):
                if posted.ts == body.get("ts"):
                    posted.text = str(body.get("text", posted.text))
                    posted.blocks = list(body.get("blocks") or posted.blocks)
            return 200, {}, {"ok": True, "channel": channel, "ts": body.get("ts") or ts}
        if method == "conversations.open":
            return 200, {}, {"ok": True, "channel": {"id": "D" + str(body.get("users", ""))}}
        if method == "conversations.history":
            channel = str(body.get("channel", ""))
            top = [p for p in self.messages.get(channel, [])
                   if p.thread_ts is None or p.thread_ts == p.ts]
            return 200, {}, _page(list(reversed(top)), body)
        if method == "conversations.replies":
            channel, parent = str(body.get("channel", "")), str(body.get("ts", ""))
            thread = [p for p in self.messages.get(channel, [])
                      if p.ts == parent or p.thread_ts == parent]
            if not any(p.ts == parent for p in thread):
                return 200, {}, {"ok": False, "error": "thread_not_found"}
            return 200, {}, _page(thread, body)
        if method in ("views.open", "views.publish", "views.update"):
            return 200, {}, {"ok": True, "view": {"id": f"V{ts}"}}
        return 200, {}, {"ok": True}


def _truthy(value: object) -> bool:
    return str(value).lower() in ("1", "true")


def _page(found: list[Posted], body: dict[str, Any]) -> dict[str, Any]:
    """One page of messages, with a cursor to the next, the way Slack paginates."""
    start = int(body.get("cursor") or 0)
    limit = min(int(body.get("limit") or 100), 999)
    page = found[start:start + limit]
    more = start + limit < len(found)
    return {"ok": True, "has_more": more,
            "messages": [p.as_slack(with_metadata=_truthy(body.get("include_all_metadata")))
                         for p in page],
            "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            if "json" in (self.headers.get("Content-Type") or ""):
                body = json.loads(raw or "{}")
            else:
                body = {k: v[0] for k, v in parse_qs(raw).items()}
                for key in ("blocks", "view", "metadata"):
                    if isinstance(body.get(key), str):
                        body[key] = json.loads(body[key])
            path = urlsplit(self.path)
            for key, values in parse_qs(path.query).items():
                body.setdefault(key, values[0])
            if path.path.startswith("/response/"):
                status, headers, answer = fake.answer("response_url", body)
            else:
                status, headers, answer = fake.answer(path.path.removeprefix("/api/"), body)
            payload = json.dumps(answer).encode()
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting (an injected timeout)
                self.close_connection = True

    return Handler


def start_fake_slack() -> FakeSlack:
    fake = FakeSlack()
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    threading.Thread(target=fake.server.serve_forever, daemon=True).start()
    return fake
