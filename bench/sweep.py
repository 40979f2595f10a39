"""P3: the reminder sweep over 1,000 due rows among 1,000,000 must take ≤ 1.2× the time it
takes among 10,000.

Both databases hold the same roster, the same 1,000 due reminders (USNCB requests, approvals,
training, each with the rows its handler reads, so every one queues messages in the outbox
and appends to the record) and differ only in how many not-due reminders surround them:
finished ones (inactive, due in the past) and pending ones (active, due later), as a table
that has run for years holds. The clock is a Tuesday afternoon, within working hours in every
zone, so every due reminder does its work. Timed: sweeps as `sweep_once` runs them (one unit of
work each, 200 rows a pass) until one finds nothing due.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bench.harness import Bench, Result, stopwatch
from bench.seed import (
    APPROVAL_COLUMNS,
    CASE_COLUMNS,
    REQUEST_COLUMNS,
    SealedPool,
    analyze,
    approval_row,
    bulk_load,
    case_id_for,
    case_row,
    migrated_engine,
    request_row,
    seed_roster,
)
from bot.clock import ManualClock
from bot.core.context import unit_of_work
from bot.schedule import reminders
from bot.schedule.runner import SYSTEM_ACTOR
from config.settings import Settings
from storage.models import OutboxMessage, RecordEntry, Reminder
from storage.vault import Vault

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # Tuesday: working hours from NY to LA
TODAY = NOW.date()
REMINDER_COLUMNS = ("kind", "ref", "case_id", "next_due_at", "sent", "active", "created_at")
USNCB_STAGES = ("validity", "documents", "use_authorization")


@dataclass(frozen=True)
class Sizes:
    small: int  # reminder rows in all, due ones included
    large: int
    due: int


FULL = Sizes(small=10_000, large=1_000_000, due=1_000)
QUICK = Sizes(small=1_000, large=10_000, due=100)


@dataclass(frozen=True)
class Measured:
    seconds: float
    passes: int
    sent: int
    outbox: int
    entries: int
    seed_seconds: float


def run(bench: Bench) -> list[Result]:
    sizes = QUICK if bench.quick else FULL
    results = []
    for kind in bench.kinds():
        # A throwaway pass first: caches (holiday table, compiled statements) filled before
        # either timed size, so neither pays for them.
        _measure(bench, kind, rows=min(sizes.due, 100), due=min(sizes.due, 100))
        # The small size before and after the large one: drift in the machine's load during
        # the run (it is shared) then weighs on both sides of the ratio alike.
        before = _measure(bench, kind, rows=sizes.small, due=sizes.due)
        large = _measure(bench, kind, rows=sizes.large, due=sizes.due)
        after = _measure(bench, kind, rows=sizes.small, due=sizes.due)
        small_seconds = (before.seconds + after.seconds) / 2
        ratio = large.seconds / small_seconds
        results.append(Result(
            id="P3", name=f"reminder sweep, {sizes.due:,} due among {sizes.large:,} vs "
            f"{sizes.small:,} rows ({kind})",
            value=round(ratio, 3), unit="×", target="≤ 1.2×",
            ok=None if bench.quick else ratio <= 1.2,
            details={"database": kind, "due": sizes.due,
                     "small_rows": sizes.small, "large_rows": sizes.large,
                     "small_seconds": round(small_seconds, 3),
                     "small_seconds_before_after": [round(before.seconds, 3),
                                                    round(after.seconds, 3)],
                     "large_seconds": round(large.seconds, 3),
                     "ms_per_due_small": round(small_seconds * 1000 / sizes.due, 2),
                     "ms_per_due_large": round(large.seconds * 1000 / sizes.due, 2),
                     "passes": large.passes, "sent": large.sent,
                     "outbox_rows": large.outbox, "record_entries": large.entries,
                     "seed_seconds_small": round(before.seed_seconds, 1),
                     "seed_seconds_large": round(large.seed_seconds, 1)}))
    return results


def _measure(bench: Bench, kind: str, *, rows: int, due: int) -> Measured:
    with bench.database(kind) as url:
        settings = bench.settings(url)
        engine = migrated_engine(url)
        try:
            with stopwatch() as seeding:
                seed(engine, settings, rows=rows, due=due)
            clock = ManualClock(NOW)
            passes = sent = 0
            with stopwatch() as took:
                while True:
                    with unit_of_work(engine, clock=clock, settings=settings,
                                      actor=SYSTEM_ACTOR) as ctx:
                        nudged = reminders.sweep(ctx)
                    passes += 1
                    sent += nudged
                    if nudged == 0:
                        break
            with Session(engine) as session:
                left = session.exec(select(func.count()).select_from(Reminder).where(
                    col(Reminder.active).is_(True), Reminder.next_due_at <= NOW)).one()
                outbox = session.exec(select(func.count()).select_from(OutboxMessage)).one()
                entries = session.exec(select(func.count()).select_from(RecordEntry)).one()
            # Every due reminder did its work, or the comparison would be meaningless.
            assert left == 0 and sent == due, (left, sent, due)
            return Measured(seconds=took[0], passes=passes, sent=sent,
                            outbox=outbox, entries=entries, seed_seconds=seeding[0])
        finally:
            engine.dispose()


def seed(engine: Engine, settings: Settings, *, rows: int, due: int) -> None:
    """The roster, `due` due reminders with their cases, and `rows - due` not-due ones. The
    due part is the same for every `rows` (a fixed random seed of its own)."""
    rng = random.Random(3)
    training = due // 10
    approvals = due * 3 // 10
    usncb = due - training - approvals
    roster, expiring = seed_roster(engine, rng, aors=20,
                                   officers_per_aor=max(10, training // 20 + 1), managers=20,
                                   today=TODAY, now=NOW, expiring=training)
    pool = SealedPool(Vault(settings.vault_keys), rng)
    cases: list[tuple[Any, ...]] = []
    requests: list[tuple[Any, ...]] = []
    approval_rows: list[tuple[Any, ...]] = []
    due_rows: list[tuple[Any, ...]] = []
    for i in range(usncb + approvals):
        aor = roster.aors[i % len(roster.aors)]
        officer = rng.choice(roster.officers[aor])
        case_id = case_id_for(i + 1, 2026, rng)
        due_at = NOW - timedelta(minutes=rng.randint(1, 72 * 60))
        if i < usncb:
            stage = rng.choices(USNCB_STAGES, weights=(45, 35, 20))[0]
            sent_on = TODAY - timedelta(days=rng.randint(3, 25))
            cases.append(case_row(pool, rng, case_id=case_id, aor=aor, officer=officer,
                                  stage=stage, opened_at=_at(sent_on) - timedelta(days=2)))
            requests.append(request_row(len(requests) + 1, case_id, stage, officer, sent_on,
                                        None, None))
            due_rows.append(("usncb_request", str(len(requests)), case_id, due_at,
                             rng.randint(0, 5), True, _at(sent_on)))
        else:
            requested = NOW - timedelta(days=rng.randint(2, 10))
            cases.append(case_row(pool, rng, case_id=case_id, aor=aor, officer=officer,
                                  stage="approval", opened_at=requested - timedelta(days=5)))
            approval_rows.append(approval_row(len(approval_rows) + 1, case_id, officer,
                                              roster.chains[aor][0], requested, "pending"))
            due_rows.append(("approval", str(len(approval_rows)), case_id, due_at,
                             rng.randint(0, 2), True, requested))
    for user in expiring:
        due_rows.append(("training", user, None, NOW - timedelta(minutes=rng.randint(1, 4320)),
                         rng.randint(0, 1), True, NOW - timedelta(days=40)))
    bulk_load(engine, "notice_case", CASE_COLUMNS, cases)
    bulk_load(engine, "usncb_request", REQUEST_COLUMNS, requests)
    bulk_load(engine, "approval", APPROVAL_COLUMNS, approval_rows)
    bulk_load(engine, "reminder", REMINDER_COLUMNS, due_rows)
    bulk_load(engine, "reminder", REMINDER_COLUMNS, not_due(random.Random(7), rows - due))
    analyze(engine)


def not_due(rng: random.Random, count: int) -> Iterator[tuple[Any, ...]]:
    """Reminders that are not due: 85 % finished (inactive, last due any time in the past three
    years), 15 % pending (active, due within six weeks). Their refs point past the seeded
    requests and approvals: they are never read, only passed over."""
    kinds = ("usncb_request",) * 6 + ("approval",) * 3 + ("training",)
    for i in range(count):
        kind = kinds[i % len(kinds)]
        if rng.random() < 0.85:
            active, due_at = False, NOW - timedelta(minutes=rng.randint(60, 3 * 365 * 1440))
        else:
            active, due_at = True, NOW + timedelta(minutes=rng.randint(5, 42 * 1440))
        if kind == "training":
            ref, case_id = f"UX{i:08d}", None
        else:
            ref, case_id = str(10_000_000 + i), f"RN-{2019 + i % 8}-{i:07d}"
        yield (kind, ref, case_id, due_at, rng.randint(0, 6), active,
               due_at - timedelta(days=rng.randint(1, 30)))


def _at(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=15)
