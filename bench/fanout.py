"""P5: 1,000 outbox messages over 100 channels, delivered by a relay process to a fake Slack that
allows one post per second per channel (429 with Retry-After above it) and injects further 429s
at random. Reports the delivery span against the theoretical minimum, and lost/duplicated posts.

The theoretical minimum: with n messages for one channel and one post per second allowed, the
last can be stored no sooner than n−1 seconds after the first, and each injected 429 (Retry-After
1 s) costs that channel one more second: the minimum is the largest n−1+k over the channels, k
being the 429s injected into that channel. The span measured is the same thing (first post
stored → last post stored), so the ratio compares like with like; the ratio to n−1 alone is
reported too."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session, col, select

from bench.harness import Bench, Result
from bot.clock import SystemClock
from bot.messages import Message
from storage.db import create_db_engine, upgrade
from storage.models import OutboxMessage
from tests.handlers.slack.fake_slack import Chaos, FakeSlack, Posted, start_fake_slack

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.2


def queue_messages(url: str, *, messages: int, channels: int, seed: int = 5) -> list[int]:
    """`messages` channel posts spread evenly over `channels`, in a shuffled order (as many
    cases' updates interleave), queued in one transaction."""
    targets = [f"C{n % channels:04d}" for n in range(messages)]
    random.Random(seed).shuffle(targets)
    engine = create_db_engine(url)
    upgrade(engine)
    now = SystemClock().now()
    rows = [{"created_at": now, "destination_kind": "channel", "destination": channel,
             "payload": Message(text=f"update {n} for {channel}").to_dict(), "status": "pending",
             "attempts": 0, "alert": False} for n, channel in enumerate(targets)]
    with engine.begin() as connection:
        connection.execute(insert(OutboxMessage), rows)
    with Session(engine) as session:
        ids = [int(i) for i in session.exec(select(OutboxMessage.id).order_by(
            col(OutboxMessage.id))) if i is not None]
    engine.dispose()
    return ids


def run_relay(url: str, fake: FakeSlack, *, max_seconds: float) -> tuple[int, float]:
    """The relay as its own process, on the real clock, until the outbox is finished."""
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "tests.handlers.slack.relay_worker", "--database-url", url,
         "--api-url", fake.api_url, "--timeout", "5", "--lease", "30",
         "--max-seconds", str(max_seconds)],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, check=False)
    if process.returncode not in (0, 2):
        raise RuntimeError(f"relay failed:\n{process.stderr[-3000:]}")
    return process.returncode, time.perf_counter() - started


def run(bench: Bench) -> list[Result]:
    messages, channels = (200, 20) if bench.quick else (1000, 100)
    results = []
    for kind in bench.kinds():
        with bench.database(kind) as url:
            ids = queue_messages(url, messages=messages, channels=channels)
            fake = start_fake_slack()
            fake.rate_per_channel_per_second = 1
            fake.rate_retry_after = 1
            fake.chaos = Chaos(seed=11, rate_limited=0.03, retry_after=1,
                               methods=frozenset({"chat.postMessage"}))
            stored: list[float] = []
            lock = threading.Lock()

            def note(_: Posted, stored: list[float] = stored,
                     lock: threading.Lock = lock) -> None:
                with lock:
                    stored.append(time.monotonic())

            fake.after_post = note
            try:
                code, wall = run_relay(url, fake, max_seconds=120)
            finally:
                assert fake.server is not None
                fake.server.shutdown()
                fake.server.server_close()
            delivered = fake.delivered()
            lost = sum(1 for i in ids if delivered[i] == 0)
            duplicated = sum(n - 1 for n in delivered.values() if n > 1)
            span = max(stored) - min(stored) if stored else float("nan")
            per_channel = messages // channels
            minimum = max(per_channel - 1 + fake.injected_429[f"C{c:04d}"]
                          for c in range(channels))
            rate_limited = sum(1 for call in fake.calls if call.method == "chat.postMessage") \
                - sum(delivered.values())
            ratio = span / minimum
            results.append(Result(
                id="P5", name=f"fan-out {messages} msgs / {channels} channels ({kind})",
                value=round(ratio, 3), unit="× min", target=f"≤ {TARGET_RATIO}× min, 0 lost/dup",
                ok=None if bench.quick else (ratio <= TARGET_RATIO and lost == 0
                                             and duplicated == 0 and code == 0),
                details={"span_s": round(span, 2), "minimum_s": minimum,
                         "ratio_ignoring_injected_429": round(span / (per_channel - 1), 3),
                         "injected_429": sum(fake.injected_429.values()),
                         "relay_wall_s": round(wall, 2), "lost": lost, "duplicated": duplicated,
                         "answered_429_in_all": rate_limited, "finished": code == 0}))
    return results
