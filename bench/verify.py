"""P6: `noticebot audit verify` over 1,000,000 record entries must take ≤ 20 s; and what an
append costs per entry.

Per database, the record starts with entries appended through the product's own path, timed:
units of work of three entries each, as one click records them (the click or form, a state
change, a queued message; `unit_of_work` chains them when it ends), then batches of 1,000
`record.append` calls in one transaction. The chain is then extended to its full size in bulk:
payloads, digests, entry hashes and Fernet sealing by the same functions `record.append` uses
(`storage.record`, `storage.vault`), the rows inserted with COPY / executemany, because a
million appends (1–2 ms each) would take 15–35 minutes per database. The bulk part
chains onto the appended part, so the verification also shows that both agree.

Timed: `noticebot audit verify` as a user runs it (a subprocess, interpreter start included),
with the peak resident memory of the command and its worker processes together (sampled), once
as it runs by default and once with the other worker count (serial in full mode, two workers in
quick mode, where the default stays serial).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bench.harness import BENCH_KEY, Bench, Result, stopwatch
from bench.seed import bulk_load, migrated_engine
from bot.clock import ManualClock
from bot.core.context import unit_of_work
from storage import merkle, record, tree
from storage.db import transaction
from storage.models import RecordEntry
from storage.vault import Vault

START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
ENTRIES_PER_UNIT = 3
APPENDS_PER_BATCH = 1_000
SEED_BATCH = 20_000  # rows per insert transaction, and per sealing job
SEED_IN_FLIGHT = 4  # sealing jobs queued ahead: keeps the seeding's memory bounded
TARGET_SECONDS = 20.0
ENTRY_COLUMNS = ("seq", "at", "actor", "kind", "action", "case_id", "payload_digest",
                 "prev_hash", "hash")
PAYLOAD_COLUMNS = ("seq", "body")
NODE_COLUMNS = ("level", "idx", "hash")


@dataclass(frozen=True)
class Sizes:
    total: int  # entries in the record when it is verified
    units: int  # units of work appended (ENTRIES_PER_UNIT entries each)
    batched: int  # entries appended in batches of APPENDS_PER_BATCH


FULL = Sizes(total=1_000_000, units=3_000, batched=20_000)
QUICK = Sizes(total=20_000, units=500, batched=3_000)


@dataclass(frozen=True)
class Appended:
    entries: int
    transactions: int
    seconds: float

    @property
    def us_per_entry(self) -> float:
        return self.seconds * 1e6 / self.entries


@dataclass(frozen=True)
class Verified:
    workers: str  # as the command was given it ("default" or a number)
    seconds: float
    peak_rss_mb: float  # the command and its workers together, sampled
    max_process_rss_mb: float  # the largest single process (its VmHWM)
    cpu_seconds: float  # user + system, workers included: steadier than the wall time
    output: str


def run(bench: Bench) -> list[Result]:
    sizes = QUICK if bench.quick else FULL
    results: list[Result] = []
    for kind in bench.kinds():
        with bench.database(kind) as url:
            engine = migrated_engine(url)
            try:
                units = _append_units(bench, engine, url, sizes.units)
                batched = _append_batched(engine, sizes.batched)
                with stopwatch() as seeding:
                    _seed(engine, sizes.total)
                _settle(engine)
            finally:
                engine.dispose()
            default = _verify(bench, url, sizes.total, workers=None)
            other = _verify(bench, url, sizes.total, workers=2 if bench.quick else 1)
        rate = sizes.total / default.seconds
        results.append(Result(
            id="P6", name=f"audit verify, {sizes.total:,} entries ({kind})",
            value=round(default.seconds, 2), unit="s", target=f"≤ {TARGET_SECONDS:g} s",
            ok=None if bench.quick else default.seconds <= TARGET_SECONDS,
            details={"database": kind, "entries": sizes.total,
                     "entries_per_s": round(rate), "cpus": _cpus(),
                     "cpu_seconds": round(default.cpu_seconds, 1),
                     "peak_rss_mb": round(default.peak_rss_mb, 1),
                     "max_process_rss_mb": round(default.max_process_rss_mb, 1),
                     f"seconds_workers_{other.workers}": round(other.seconds, 2),
                     f"cpu_seconds_workers_{other.workers}": round(other.cpu_seconds, 1),
                     f"peak_rss_mb_workers_{other.workers}": round(other.peak_rss_mb, 1),
                     "seed_seconds": round(seeding[0], 1),
                     "output": default.output}))
        for label, appended in (
            (f"units of work of {ENTRIES_PER_UNIT}", units),
            (f"batches of {APPENDS_PER_BATCH:,}", batched),
        ):
            results.append(Result(
                id="P6", name=f"append per entry, {label} ({kind})",
                value=round(appended.us_per_entry, 1), unit="µs", target="—", ok=None,
                details={"database": kind, "entries": appended.entries,
                         "transactions": appended.transactions,
                         "seconds": round(appended.seconds, 2)}))
    return results


# --- what the record holds ------------------------------------------------------------------


def _entry(i: int) -> tuple[str, str, str, str | None, dict[str, Any]]:
    """The i-th entry (from 0): actor, kind, action, case and payload, in a click's pattern:
    the click (every fourth a form submission), the state change, the message it queues.
    Sizes as a walked case records them (40 bytes to 0.6 kB of JSON, ~200 on average)."""
    unit, slot = divmod(i, ENTRIES_PER_UNIT)
    actor = f"U0O{unit % 400:03d}{unit % 7}"
    case_id = f"RN-2026-{unit // 6 % 100_000:05d}"
    if slot == 0 and unit % 4:
        return actor, "click", "click.review", case_id, {"action": "review", "ref": None}
    if slot == 0:
        return actor, "form", "form.review", case_id, {
            "channel": "slack", "form": "review", "ref": None, "submission_key": f"v{unit}",
            "values": {"outcome": "no_indications",
                       "sources": ["interpol_guidance", "law_enforcement_systems",
                                   "usg_reports", "public_information"]}}
    if slot == 1:
        return actor, "state", "case.stage", case_id, {"previous": "validity",
                                                        "stage": "review", "unit": unit}
    return actor, "outbound", "message.queued", case_id, {
        "destination": case_id, "destination_kind": "thread", "key": f"{case_id}:review",
        "message": {
            "actions": [{"label": "Record preliminary review", "style": "primary",
                         "value": {"action": "review", "case_id": case_id, "ref": None}}],
            "fields": [], "key": f"{case_id}:review", "notes": [],
            "section": "§5.1(2), §5.2, §2.3",
            "text": "Review the notice for signs it is prohibited or non-compliant: offense "
                    "categories, political, military, religious or racial character, and "
                    f"what is known of the subject (unit {unit}).",
            "title": "2. Preliminary review"}}


# --- appended through the product -----------------------------------------------------------


def _append_units(bench: Bench, engine: Engine, url: str, units: int) -> Appended:
    settings = bench.settings(url)
    clock = ManualClock(START)
    with stopwatch() as took:
        for unit in range(units):
            first = unit * ENTRIES_PER_UNIT
            with unit_of_work(engine, clock=clock, settings=settings,
                              actor=_entry(first)[0]) as ctx:
                for i in range(first, first + ENTRIES_PER_UNIT):
                    _, kind, action, case_id, payload = _entry(i)
                    ctx.record(kind, action, case_id=case_id, **payload)
            clock.advance(timedelta(seconds=1))
    return Appended(entries=units * ENTRIES_PER_UNIT, transactions=units, seconds=took[0])


def _append_batched(engine: Engine, entries: int) -> Appended:
    vault = Vault((BENCH_KEY,))
    first, at = _head(engine)
    transactions = 0
    with stopwatch() as took:
        for start in range(first, first + entries, APPENDS_PER_BATCH):
            with transaction(engine) as session:
                for i in range(start, min(start + APPENDS_PER_BATCH, first + entries)):
                    actor, kind, action, case_id, payload = _entry(i)
                    record.append(session, at=at + timedelta(milliseconds=i), actor=actor,
                                  kind=kind, action=action, case_id=case_id, payload=payload,
                                  vault=vault)
            transactions += 1
    return Appended(entries=entries, transactions=transactions, seconds=took[0])


def last_entry() -> SelectOfScalar[RecordEntry]:
    """The record's newest entry. LIMIT 1, not just `.first()`: an ORM result buffers every
    row it matches, which at 10,000,000 entries is more memory than the machine has."""
    return select(RecordEntry).order_by(col(RecordEntry.seq).desc()).limit(1)


def _head(engine: Engine) -> tuple[int, datetime]:
    """How many entries there are (the next entry's index) and a time after the last one."""
    with Session(engine) as session:
        last = session.exec(last_entry()).first()
    assert last is not None
    return last.seq, last.at + timedelta(seconds=1)


# --- extended in bulk -----------------------------------------------------------------------


def _seed(engine: Engine, total: int) -> None:
    """Chain entries onto the head until the record holds `total`. Sealing (Fernet, the bulk of
    the work, and independent per entry) runs in worker processes; the hashes chain here."""
    with Session(engine) as session:
        head = session.exec(last_entry()).first()
    assert head is not None
    seq, prev_hash = head.seq, head.hash
    base = head.at + timedelta(seconds=1)
    with Session(engine) as session:  # the Merkle tree grows with the entries (storage.tree)
        builder = merkle.TreeBuilder.at(seq, lambda wanted: tree.nodes(session, wanted))
    starts = iter(range(seq, total, SEED_BATCH))
    with multiprocessing.get_context("spawn").Pool(_cpus()) as pool:
        queued: deque[tuple[int, AsyncResult[list[tuple[str, str]]]]] = deque()
        for start in starts:
            queued.append((start, pool.apply_async(_seal, (start, min(start + SEED_BATCH,
                                                                       total)))))
            if len(queued) < SEED_IN_FLIGHT:
                continue
            seq, prev_hash = _load(engine, *_ready(queued), seq, prev_hash, base, builder)
        while queued:
            seq, prev_hash = _load(engine, *_ready(queued), seq, prev_hash, base, builder)
    assert seq == total, (seq, total)


def _ready(queued: deque[tuple[int, AsyncResult[list[tuple[str, str]]]]]
           ) -> tuple[int, list[tuple[str, str]]]:
    start, sealing = queued.popleft()
    return start, sealing.get()


def _seal(start: int, stop: int) -> list[tuple[str, str]]:
    """In a worker: each entry's payload digest and stored body, as `record.append` makes them."""
    vault = Vault((BENCH_KEY,))
    sealed = []
    for i in range(start, stop):
        body = record.canonical_json(_entry(i)[4])
        sealed.append((record.sha256_hex(body), vault.seal(body)))
    return sealed


def _load(engine: Engine, start: int, sealed: list[tuple[str, str]], seq: int, prev_hash: str,
          base: datetime, builder: merkle.TreeBuilder) -> tuple[int, str]:
    entries: list[tuple[Any, ...]] = []
    payloads: list[tuple[int, str]] = []
    nodes: list[tuple[int, int, str]] = []
    for i, (digest, body) in enumerate(sealed, start=start):
        seq += 1
        actor, kind, action, case_id, _ = _entry(i)
        at = base + timedelta(milliseconds=i)  # whole milliseconds, as `append` keeps them
        entry_hash = record.entry_hash(prev_hash=prev_hash, seq=seq, at=at, actor=actor,
                                       kind=kind, action=action, case_id=case_id,
                                       payload_digest=digest)
        entries.append((seq, at, actor, kind, action, case_id, digest, prev_hash, entry_hash))
        payloads.append((seq, body))
        nodes.extend((level, idx, node.hex())
                     for level, idx, node in builder.add(merkle.entry_leaf(entry_hash)))
        prev_hash = entry_hash
    bulk_load(engine, "record_entry", ENTRY_COLUMNS, entries)
    bulk_load(engine, "record_payload", PAYLOAD_COLUMNS, payloads)
    bulk_load(engine, "record_tree_node", NODE_COLUMNS, nodes)
    return seq, prev_hash


def _settle(engine: Engine) -> None:
    """Leave the tables as a long-running database would have them: PostgreSQL vacuumed and
    analyzed (else the first read after the bulk load sets hint bits, i.e. writes), SQLite's
    write-ahead log checkpointed into the database file."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE) record_entry, record_payload, "
                                    "record_tree_node"))
    else:
        raw = engine.raw_connection()  # outside a transaction (storage.db begins IMMEDIATE)
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()


# --- `noticebot audit verify` ---------------------------------------------------------------


def _verify(bench: Bench, url: str, total: int, *, workers: int | None) -> Verified:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("NOTICEBOT_", "SLACK_"))}
    env.update(NOTICEBOT_DATABASE_URL=url, NOTICEBOT_ENCRYPTION_KEYS=BENCH_KEY,
               NOTICEBOT_ENV="development")
    command = [str(Path(sys.executable).with_name("noticebot")), "audit", "verify"]
    if workers is not None:
        command += ["--workers", str(workers)]
    peak = largest = 0.0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # cwd: the scratch folder, where no .env is read.
    with subprocess.Popen(command, cwd=bench.workdir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        while True:
            now, high = _tree_memory_mb(process.pid)
            peak, largest = max(peak, now), max(largest, high)
            try:
                process.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                continue
        seconds = time.perf_counter() - start
        stdout, stderr = process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    expected = f"OK: {total} entries verified; head {total} "
    if process.returncode != 0 or not stdout.startswith(expected):
        raise RuntimeError(f"audit verify did not confirm {total:,} entries: "
                           f"{stdout.strip()} {stderr.strip()[-2000:]}")
    return Verified(workers="default" if workers is None else str(workers), seconds=seconds,
                    peak_rss_mb=peak, max_process_rss_mb=largest, cpu_seconds=cpu,
                    output=stdout.strip())


def _tree_memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory of a process and its descendants together now, and the highest peak
    of any one of them so far, in MB (0 once they are gone)."""
    total = largest = 0.0
    for process in _tree(pid):
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        now, high = (re.search(rf"^{name}:\s+(\d+)", status, re.MULTILINE)
                     for name in ("VmRSS", "VmHWM"))
        total += int(now.group(1)) / 1024 if now else 0.0
        largest = max(largest, int(high.group(1)) / 1024 if high else 0.0)
    return total, largest


def _tree(pid: int) -> Iterator[int]:
    yield pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return
    for child in children:
        yield from _tree(int(child))


def _cpus() -> int:
    return len(os.sched_getaffinity(0))
