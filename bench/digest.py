"""P4: the weekly digests for 500 managers over 100,000 cases must take ≤ 10 s in all.

The roster has 200 AORs of uneven size (a field office's caseload varies several-fold), each
with officers and a two- or three-person approver chain; 500 managers, most overseeing one AOR
and every fifth a neighbouring one as well, in zones from New York to Los Angeles. Cases have
the history their stage implies: 70 % closed (for the reasons cases close), the rest spread
over the open stages, with USNCB requests answered or waiting, approvals decided or pending, and
training on record at every age. Timed: one `sweep_digests` on a Monday 18:00 UTC (past 08:00 in
every zone), which claims and sends every manager's digest; inside it, each `build_digest` and
the reads of the facts digests are built from (`load_facts`) are timed too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from unittest.mock import patch

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from bench.harness import Bench, Result, percentile, stopwatch
from bench.seed import (
    APPROVAL_COLUMNS,
    CASE_COLUMNS,
    REQUEST_COLUMNS,
    Roster,
    SealedPool,
    analyze,
    approval_row,
    bulk_load,
    case_row,
    migrated_engine,
    request_row,
    seed_roster,
)
from bot.clock import ManualClock
from bot.schedule import digest
from config.settings import Settings
from storage.models import DigestSent, OutboxMessage
from storage.vault import Vault

T = TypeVar("T")
NOW = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)  # Monday: past 08:00 from New York to LA
TODAY = NOW.date()
OPEN_STAGES = ("validity", "review", "doubt", "approval", "documents", "use_authorization",
               "disclosure", "representations", "ready")
OPEN_WEIGHTS = (5, 3, 1, 3, 5, 4, 3, 1, 5)  # of 100 cases; the other 70 are closed
CLOSE_REASONS = ("notice_inactive", "withdrawn", "denied", "doubt_unresolved",
                 "use_not_authorized", "prohibited", "misuse")
CLOSE_WEIGHTS = (30, 20, 15, 10, 10, 9, 6)
# How far a case closed for each reason had got (index into OPEN_STAGES).
REACHED = {"notice_inactive": 0, "withdrawn": 4, "denied": 3, "doubt_unresolved": 2,
           "use_not_authorized": 5, "prohibited": 1, "misuse": 1}


@dataclass(frozen=True)
class Sizes:
    managers: int
    cases: int
    aors: int
    officers_per_aor: int


FULL = Sizes(managers=500, cases=100_000, aors=200, officers_per_aor=12)
QUICK = Sizes(managers=20, cases=2_000, aors=8, officers_per_aor=6)
WARM_UP = Sizes(managers=2, cases=50, aors=2, officers_per_aor=3)


@dataclass(frozen=True)
class Measured:
    seconds: float
    builds: list[float]
    loads: list[float]
    sent: int
    seed_seconds: float
    requests: int
    approvals: int


def run(bench: Bench) -> list[Result]:
    sizes = QUICK if bench.quick else FULL
    results = []
    for kind in bench.kinds():
        _measure(bench, kind, WARM_UP)  # caches filled (holiday table, compiled statements)
        measured = _measure(bench, kind, sizes)
        builds_ms = [seconds * 1000 for seconds in measured.builds]
        results.append(Result(
            id="P4", name=f"weekly digests, {sizes.managers:,} managers over "
            f"{sizes.cases:,} cases ({kind})",
            value=round(measured.seconds, 2), unit="s", target="≤ 10 s",
            ok=None if bench.quick else measured.seconds <= 10,
            details={"database": kind, "managers": sizes.managers, "cases": sizes.cases,
                     "aors": sizes.aors, "usncb_requests": measured.requests,
                     "approvals": measured.approvals, "digests_sent": measured.sent,
                     "per_manager_ms": round(measured.seconds * 1000 / sizes.managers, 2),
                     "build_ms_p50": round(percentile(builds_ms, 50), 2),
                     "build_ms_p95": round(percentile(builds_ms, 95), 2),
                     "build_ms_max": round(max(builds_ms), 2),
                     "facts_reads": len(measured.loads),
                     "facts_read_ms": round(sum(measured.loads) * 1000, 1),
                     "seed_seconds": round(measured.seed_seconds, 1)}))
    return results


def _measure(bench: Bench, kind: str, sizes: Sizes) -> Measured:
    with bench.database(kind) as url:
        settings = bench.settings(url)
        engine = migrated_engine(url)
        try:
            with stopwatch() as seeding:
                requests, approvals = seed(engine, settings, sizes)
            builds: list[float] = []
            loads: list[float] = []
            # sweep_digests looks these up in its module: time each call there.
            with patch.object(digest, "build_digest", _timed(digest.build_digest, builds)), \
                    patch.object(digest, "load_facts", _timed(digest.load_facts, loads)), \
                    stopwatch() as took:
                sent = digest.sweep_digests(engine=engine, clock=ManualClock(NOW),
                                            settings=settings)
            with Session(engine) as session:
                claimed = session.exec(select(func.count()).select_from(DigestSent)).one()
                queued = session.exec(select(func.count()).select_from(OutboxMessage)).one()
            assert sent == claimed == queued == sizes.managers, (sent, claimed, queued)
            return Measured(seconds=took[0], builds=builds, loads=loads, sent=sent,
                            seed_seconds=seeding[0], requests=requests, approvals=approvals)
        finally:
            engine.dispose()


def _timed(call: Callable[..., T], into: list[float]) -> Callable[..., T]:
    def timed(*args: Any, **kwargs: Any) -> T:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)
    return timed


def seed(engine: Engine, settings: Settings, sizes: Sizes) -> tuple[int, int]:
    """Roster and cases; returns how many USNCB requests and approvals were written."""
    rng = random.Random(11)
    roster, _ = seed_roster(engine, rng, aors=sizes.aors,
                            officers_per_aor=sizes.officers_per_aor, managers=sizes.managers,
                            today=TODAY, now=NOW)
    pool = SealedPool(Vault(settings.vault_keys), rng)
    weights = [rng.uniform(0.3, 2.5) for _ in roster.aors]
    counters: dict[int, int] = {}
    cases: list[tuple[Any, ...]] = []
    requests: list[tuple[Any, ...]] = []
    approvals: list[tuple[Any, ...]] = []
    for aor in rng.choices(roster.aors, weights=weights, k=sizes.cases):
        _one_case(rng, pool, roster, aor, counters, cases, requests, approvals)
    bulk_load(engine, "case_counter", ("year", "last"), sorted(counters.items()))
    bulk_load(engine, "notice_case", CASE_COLUMNS, cases)
    bulk_load(engine, "usncb_request", REQUEST_COLUMNS, requests)
    bulk_load(engine, "approval", APPROVAL_COLUMNS, approvals)
    analyze(engine)
    return len(requests), len(approvals)


def _one_case(rng: random.Random, pool: SealedPool, roster: Roster, aor: str,
              counters: dict[int, int], cases: list[tuple[Any, ...]],
              requests: list[tuple[Any, ...]], approvals: list[tuple[Any, ...]]) -> None:
    officer = rng.choice(roster.officers[aor])
    approver = roster.chains[aor][0]
    closed = rng.random() < 0.70
    if closed:
        reason = rng.choices(CLOSE_REASONS, weights=CLOSE_WEIGHTS)[0]
        reached = REACHED[reason]
        opened = NOW - timedelta(days=rng.uniform(2, 4 * 365))
        closed_at: datetime | None = min(NOW - timedelta(hours=1),
                                         opened + timedelta(days=rng.uniform(1, 90)))
        stage = "closed"
    else:
        reason, closed_at = None, None
        stage = rng.choices(OPEN_STAGES, weights=OPEN_WEIGHTS)[0]
        reached = OPEN_STAGES.index(stage)
        opened = NOW - timedelta(days=rng.uniform(0, 120))
    counters[opened.year] = counters.get(opened.year, 0) + 1
    prefix = "RN" if rng.random() < 0.8 else "WD"
    case_id = f"{prefix}-{opened.year}-{counters[opened.year]:05d}"
    cases.append(case_row(pool, rng, case_id=case_id, aor=aor, officer=officer, stage=stage,
                          opened_at=opened, closed_at=closed_at, close_reason=reason))
    day = opened.date()
    # Each step's USNCB request: answered once the case moved past it, waiting while it is
    # there (open cases only).
    for kind, position, answer in (("validity", 0, "active"), ("documents", 4, "received"),
                                   ("use_authorization", 5, "authorized")):
        if reached < position:
            break
        sent_on = min(TODAY, day + timedelta(days=rng.randint(0, 3)))
        waiting = not closed and reached == position
        answered_on = None if waiting else min(TODAY, sent_on + timedelta(days=rng.randint(1, 9)))
        requests.append(request_row(len(requests) + 1, case_id, kind, officer, sent_on,
                                    answered_on, None if waiting else answer))
        day = answered_on or day
    if reached >= 3:
        requested = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=16)
        if not closed and reached == 3:
            status = "pending"
        else:
            status = "denied" if reason == "denied" else "approved"
        approvals.append(approval_row(len(approvals) + 1, case_id, officer, approver,
                                      min(requested, NOW), status))
