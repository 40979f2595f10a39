"""R5/R6 fault runs.

R5: three replica processes sweep one PostgreSQL database in lockstep over a simulated week
(Thanksgiving included): reminders, escalations and digests fall due while they compete. The
expected outcome is not written down by hand: the same cases are seeded into a second database
that a single sweeper walks through the same moments, and the replicas must match it exactly.

R6: the outbox those sweeps (and the cases) produced is then delivered to a fake Slack that
answers with 429s, 5xx and timeouts (half of which did post), by a relay process that is killed
(SIGKILL) in the middle of a post, and a second relay that finishes. Every message must be in
Slack exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from bench.harness import BENCH_KEY, Bench, Result
from bot.app import build_core, load_roster_text, sample_roster_text
from bot.clock import ManualClock
from bot.core.service import Core
from bot.messages import ActionId, Message
from bot.schedule.runner import sweep_once
from storage import record
from storage.models import DigestSent, OutboxMessage, OutboxStatus
from storage.vault import Vault
from tests.handlers.slack.fake_slack import Chaos, FakeSlack, Posted, start_fake_slack
from tests.helpers import OFFICER, TODAY, entries, open_case, press, to_approval, to_documents
from tests.schedule.replica import Replicas

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 23, 15, tzinfo=UTC)  # a Monday; Thanksgiving is that Thursday
# Every case posts into its area's one channel: a fake Slack allowing 5 posts/s there (and a
# relay pacing to match) keeps the run short; rate limits themselves are P5's subject.
FAKE_RATE = 5


def seed(bench: Bench, url: str, *, waiting: int, approvals: int) -> Core:
    """Cases whose USNCB documents requests go unanswered, and approvals nobody decides."""
    core = build_core(bench.settings(url), clock=ManualClock(START))
    load_roster_text(core, sample_roster_text(START.date()), actor="bench", source="sample")
    for _ in range(waiting):
        case_id = open_case(core)
        to_documents(core, case_id)
        press(core, OFFICER, case_id, ActionId.documents_sent,
              {"documents": ["warrant"], "sent_on": TODAY, "method": "e-mail"})
    for _ in range(approvals):
        case_id = open_case(core)
        to_approval(core, case_id)
        press(core, OFFICER, case_id, ActionId.request_approval)
    return core


def moments(days: int) -> list[datetime]:
    return [START + timedelta(hours=h) for h in range(days * 24)]


def tally(core: Core) -> Counter[str]:
    """What the sweeps did, as countable facts: each reminder sent (per case and reminder
    count) and each digest (per manager and week)."""
    vault = Vault((BENCH_KEY,))
    done: Counter[str] = Counter()
    with Session(core.engine) as session:
        for entry in entries(core, action="reminder.sent"):
            body = record.payload_of(session, entry.seq, vault) or {}
            kind = "approval" if "approval_id" in body else "documents"
            done[f"reminder {kind} {entry.case_id} #{body.get('count')}"] += 1
        for row in session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))):
            if Message.from_dict(row.payload).title.startswith("Weekly digest"):
                done[f"digest DM {row.destination}"] += 1
        for sent in session.exec(select(DigestSent)):
            done[f"digest {sent.manager} {sent.iso_year}-W{sent.iso_week}"] += 1
    return done


def compare(expected: Counter[str], got: Counter[str]) -> tuple[int, int]:
    """(lost, duplicated): facts the single sweeper produced that the replicas did not, and
    facts the replicas produced more often (or that never should have happened)."""
    lost = sum((expected - got).values())
    duplicated = sum((got - expected).values())
    return lost, duplicated


def replicas_run(bench: Bench, url: str, days: int) -> None:
    control = bench.workdir / f"replicas-{time.monotonic_ns()}"
    control.mkdir()
    replicas = Replicas(url, control, BENCH_KEY, count=3)
    try:
        for moment in moments(days):
            replicas.at(moment)
        replicas.stop()
    finally:
        replicas.kill()


def expected_posts(core: Core) -> list[int]:
    """Outbox rows that make a new Slack message (the first version of each keyed message;
    later versions update it in place)."""
    seen: set[str] = set()
    posts = []
    with Session(core.engine) as session:
        for row in session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))):
            assert row.id is not None
            if row.message_key is None or row.message_key not in seen:
                posts.append(row.id)
            if row.message_key is not None:
                seen.add(row.message_key)
    return posts


def relay(url: str, fake: FakeSlack, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.handlers.slack.relay_worker", "--database-url", url,
             "--api-url", fake.api_url, "--timeout", "0.5", "--lease", "5",
             "--pace", str(1 / FAKE_RATE),
             "--max-seconds", "240"],
            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=sink)


def deliver_with_faults(core: Core, url: str, workdir: Path) -> dict[str, Any]:
    """Deliver the outbox through injected failures; kill the first relay mid-post."""
    posts = expected_posts(core)
    fake = start_fake_slack()
    fake.chaos = Chaos(seed=3, rate_limited=0.05, server_error=0.05, timeout=0.05,
                       retry_after=1, timeout_seconds=1.0)
    fake.rate_per_channel_per_second = FAKE_RATE
    killed = threading.Event()
    log = workdir / f"relays-{time.monotonic_ns()}.log"
    first = relay(url, fake, log)

    def kill_mid_post(_: Posted) -> None:
        # Slack stored the post; the relay dies before hearing back.
        if len(fake.delivered()) >= len(posts) // 2 and not killed.is_set():
            first.send_signal(signal.SIGKILL)
            killed.set()

    fake.after_post = kill_mid_post
    started = time.monotonic()
    try:
        if not killed.wait(timeout=240):
            raise RuntimeError("the relay never got halfway: " + log.read_text()[-2000:])
        first.wait()
        fake.after_post = None
        second = relay(url, fake, log)
        if second.wait(timeout=300) != 0:
            raise RuntimeError("the second relay did not finish: " + log.read_text()[-2000:])
    finally:
        fake.close()
        assert fake.server is not None
        fake.server.shutdown()
        fake.server.server_close()
    delivered = fake.delivered()
    with Session(core.engine) as session:
        unfinished = len(session.exec(select(OutboxMessage.id).where(
            col(OutboxMessage.status) != OutboxStatus.sent)).all())
    injected = Counter(c.method for c in fake.calls)  # every call, failed ones included
    return {"messages": len(posts), "sent": sum(1 for i in posts if delivered[i] >= 1),
            "lost": sum(1 for i in posts if delivered[i] == 0),
            "duplicated": sum(n - 1 for n in delivered.values() if n > 1),
            "unexpected": sum(1 for i in delivered if i not in set(posts)),
            "not_marked_sent": unfinished, "relay_killed": killed.is_set(),
            "takeovers": log.read_text().count("taking over a claim"),
            "slack_calls": dict(injected), "seconds": round(time.monotonic() - started, 1)}


def run(bench: Bench) -> list[Result]:
    days, waiting, approvals = (2, 2, 1) if bench.quick else (7, 8, 4)
    results = []
    for kind in bench.kinds():
        with bench.database(kind) as url, bench.database("sqlite") as reference_url:
            core = seed(bench, url, waiting=waiting, approvals=approvals)
            if kind == "postgresql":
                reference = seed(bench, reference_url, waiting=waiting, approvals=approvals)
                for moment in moments(days):
                    reference.clock.set(moment)  # type: ignore[attr-defined]
                    sweep_once(reference)
                expected = tally(reference)
                reference.engine.dispose()
                replicas_run(bench, url, days)
                got = tally(core)
                lost, duplicated = compare(expected, got)
                results.append(Result(
                    id="R5", name=f"3 replicas, {days} simulated days ({kind})",
                    value=lost + duplicated, unit="lost+dup", target="0 lost, 0 duplicated",
                    ok=lost == 0 and duplicated == 0 and sum(expected.values()) > 0,
                    details={"expected": sum(expected.values()), "done": sum(got.values()),
                             "lost": lost, "duplicated": duplicated,
                             "reminders": sum(n for k, n in got.items()
                                              if k.startswith("reminder")),
                             "digests": sum(n for k, n in got.items()
                                            if k.startswith("digest DM"))}))
            else:
                for moment in moments(days):  # one process: the R6 run needs an outbox
                    core.clock.set(moment)  # type: ignore[attr-defined]
                    sweep_once(core)
            faults = deliver_with_faults(core, url, bench.workdir)
            core.engine.dispose()
            bad = faults["lost"] + faults["duplicated"] + faults["unexpected"]
            results.append(Result(
                id="R6", name=f"Slack 429/5xx/timeouts, relay killed mid-post ({kind})",
                value=bad, unit="lost+dup", target="0 lost, 0 duplicated",
                ok=bad == 0 and faults["not_marked_sent"] == 0 and faults["relay_killed"],
                details=faults))
    return results
