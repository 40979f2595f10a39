"""A fake Slack Web API on loopback: answers the methods noticebot uses, records every call with
its body, serves response_url, and injects 429 (with Retry-After) and 5xx on demand."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Call:
    method: str
    body: dict[str, Any]


@dataclass
class FakeSlack:
    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
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

    def fail_next(self, method: str, status: int, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.failures.append((method, status, headers or {}))

    def of(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.body for c in self.calls if c.method == method]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.02)
        raise AssertionError("fake Slack: condition not met in time")

    def answer(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.calls.append(Call(method, body))
            for index, (name, status, headers) in enumerate(self.failures):
                if name == method:
                    del self.failures[index]
                    return status, headers, {"ok": False, "error": "injected"}
            ts = f"1700000000.{next(self._ts):06d}"
        if method == "auth.test":
            return 200, {}, {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1",
                             "url": "https://example.slack.com/"}
        if method in ("chat.postMessage", "chat.update"):
            channel = body.get("channel", "")
            return 200, {}, {"ok": True, "channel": channel, "ts": body.get("ts") or ts}
        if method == "conversations.open":
            return 200, {}, {"ok": True, "channel": {"id": "D" + str(body.get("users", ""))}}
        if method in ("views.open", "views.publish", "views.update"):
            return 200, {}, {"ok": True, "view": {"id": f"V{ts}"}}
        return 200, {}, {"ok": True}


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
            if self.path.startswith("/response/"):
                status, headers, answer = fake.answer("response_url", body)
            else:
                status, headers, answer = fake.answer(self.path.removeprefix("/api/"), body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def start_fake_slack() -> FakeSlack:
    fake = FakeSlack()
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    threading.Thread(target=fake.server.serve_forever, daemon=True).start()
    return fake
