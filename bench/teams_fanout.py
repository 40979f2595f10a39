"""TP2: the Teams fan-out. 1,000 outbox messages over 100 Teams threads (conversations),
delivered by the real Teams relay (`TeamsRelay` over `TeamsTransport`) to a fake Bot Connector
on loopback that enforces Teams' limits (429 with Retry-After 1 s above 7 posts a second in a
thread or 50 requests a second in the tenant) and injects further 429s at random (3 %).

The minimum Teams' limits allow: the tenant takes at most 50 requests a second, so 1,000 posts
and the k requests refused by injected 429s span at least (1,000 + k − 1) / 50 s from the
first stored to the last (the ratio to (1,000 − 1) / 50 s alone is reported too); a thread
takes at most 7 a second, and each 429 injected into it costs it its Retry-After (1 s), so no
thread finishes sooner than (n − 1) / 7 + k s. The minimum is the larger of the two; the span
measured is the same thing (first post stored → last post stored). The relay runs in this
process, next to the fake (the machine's cores are shared with the fake's threads and whatever
else runs)."""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

from sqlalchemy import insert
from sqlmodel import Session, col, select

from bench.harness import Bench, Result
from bot.clock import SystemClock
from bot.messages import Message
from storage.db import create_db_engine, upgrade
from storage.models import OutboxMessage, OutboxStatus
from tests.handlers.teams.fake_teams import APP_ID, TENANT, FakeTeams

TARGET_RATIO = 1.2
TENANT_RPS, THREAD_RPS, RETRY_AFTER, INJECTED = 50, 7, 1, 0.03
MARK = re.compile(r"\[m(\d{4})\]")


class LimitedTeams(FakeTeams):
    """The fake Bot Connector with Teams' limits and random 429s on posts."""

    def __init__(self, seed: int = 11) -> None:
        super().__init__()
        self.chaos = random.Random(seed)
        self.tenant: deque[float] = deque()
        self.threads: dict[str, deque[float]] = {}
        self.stored: list[tuple[float, str, int]] = []  # when, thread, message number
        self.injected: Counter[str] = Counter()
        self.limited = 0

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], object]:
        path = unquote(handler.path)
        if handler.command != "POST" or not path.endswith("/activities"):
            return super().answer(handler)
        thread = path.removeprefix("/v3/conversations/").removesuffix("/activities")
        length = int(handler.headers.get("content-length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        with self._lock:
            now = time.monotonic()
            recent = self.threads.setdefault(thread, deque())
            for window in (self.tenant, recent):
                while window and window[0] <= now - 1.0:
                    window.popleft()
            self.tenant.append(now)  # a refused request counts against the tenant too
            if len(self.tenant) > TENANT_RPS or len(recent) >= THREAD_RPS:
                self.limited += 1
                return 429, {"Retry-After": str(RETRY_AFTER)}, {"error": {"code": "Throttled"}}
            if self.chaos.random() < INJECTED:
                self.injected[thread] += 1
                return 429, {"Retry-After": str(RETRY_AFTER)}, {"error": {"code": "Injected"}}
            recent.append(now)
            self._ids += 1
            ref = str(self._ids)
            for number in set(MARK.findall(json.dumps(body))):  # card and summary
                self.stored.append((now, thread, int(number)))
        return 201, {}, {"id": ref}


def queue_messages(url: str, *, messages: int, threads: int, seed: int = 5) -> None:
    """`messages` posts spread evenly over `threads` conversations, shuffled (as many cases'
    updates interleave), queued in one transaction."""
    targets = [f"19:t{n % threads:03d}@thread.tacv2" for n in range(messages)]
    random.Random(seed).shuffle(targets)
    engine = create_db_engine(url)
    upgrade(engine)
    now = SystemClock().now()
    rows = [{"created_at": now, "destination_kind": "channel", "destination": thread,
             "platform": "teams", "payload": Message(text=f"update [m{n:04d}]").to_dict(),
             "status": "pending", "attempts": 0, "alert": False}
            for n, thread in enumerate(targets)]
    with engine.begin() as connection:
        connection.execute(insert(OutboxMessage), rows)
    engine.dispose()


def deliver(url: str, fake: LimitedTeams, *, max_seconds: float) -> tuple[int, float]:
    """Drain with the real Teams relay until nothing is left; (rows not sent, wall seconds)."""
    from handlers.teams.relay import TeamsRelay
    from handlers.teams.transport import TeamsTransport

    engine = create_db_engine(url)
    transport = TeamsTransport(service_url=fake.url, bot_id=APP_ID, tenant_id=TENANT,
                               token=lambda: "")
    relay = TeamsRelay(engine=engine, transport=transport, clock=SystemClock())
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < max_seconds:
            relay.drain(limit=5000)
            with Session(engine) as session:
                left = len(session.exec(select(OutboxMessage.id).where(
                    col(OutboxMessage.status) != OutboxStatus.sent.value)).all())
            if left == 0:
                break
    finally:
        wall = time.perf_counter() - started
        transport.client.close()
        engine.dispose()
    return left, wall


def run(bench: Bench) -> list[Result]:
    messages, threads = (200, 20) if bench.quick else (1000, 100)
    results = []
    for kind in bench.kinds():
        with bench.database(kind) as url:
            queue_messages(url, messages=messages, threads=threads)
            fake = LimitedTeams()
            fake.start()
            try:
                unsent, wall = deliver(url, fake, max_seconds=180)
            finally:
                fake.stop()
            counts = Counter(number for _, _, number in fake.stored)
            lost = sum(1 for n in range(messages) if counts[n] == 0)
            duplicated = sum(n - 1 for n in counts.values() if n > 1)
            times = [at for at, _, _ in fake.stored]
            span = max(times) - min(times) if times else float("nan")
            per_thread = messages // threads
            thread_minimum = max((per_thread - 1) / THREAD_RPS + fake.injected[t] * RETRY_AFTER
                                 for t in {t for _, t, _ in fake.stored})
            # Every request counts against the tenant, the injected 429s' included.
            tenant_minimum = (messages + sum(fake.injected.values()) - 1) / TENANT_RPS
            minimum = max(tenant_minimum, thread_minimum)
            ratio = span / minimum
            results.append(Result(
                id="TP2", name=f"Teams fan-out {messages} msgs / {threads} threads ({kind})",
                value=round(ratio, 3), unit="× min", target=f"≤ {TARGET_RATIO}× min, 0 lost",
                ok=None if bench.quick else (ratio <= TARGET_RATIO and lost == 0
                                             and unsent == 0),
                details={"span_s": round(span, 2), "minimum_s": round(minimum, 2),
                         "tenant_minimum_s": round(tenant_minimum, 2),
                         "ratio_to_posts_alone": round(span / ((messages - 1) / TENANT_RPS), 3),
                         "thread_minimum_s": round(thread_minimum, 2),
                         "injected_429": sum(fake.injected.values()),
                         "answered_429_over_limits": fake.limited,
                         "relay_wall_s": round(wall, 2), "lost": lost, "unsent": unsent,
                         "duplicated": duplicated}))
    return results
