"""T1–T4: the record's Merkle tree and signed checkpoints.

- T1 incremental verify (`checkpoints.verify_incremental`) of the newest NEW entries after a
  signed checkpoint, among BIG entries vs among SMALL: the ratio must be ≤ 1.2 and the big one
  ≤ 2 s (the cost follows the new entries, not the table).
- T2 full verify (`checkpoints.verify_full`, as `audit verify --full` runs it: chain, payloads
  and the whole tree in one parallel pass) of BIG entries: ≤ 100 s at 10,000,000.
- T3 append per entry with the tree, in units of work of three, vs the same without the tree
  (`storage.tree.new_nodes` giving none) in the same run, alternated, best of three rounds each
  (fresh databases): ≤ 1.3×.
- T4 inclusion proofs for a 200-entry case spread over BIG entries: ≤ 100 ms in all.

The records are built by `bench.bulk` (the chain and the tree written directly, a pool of sealed
payloads reused; verification still decrypts and checks every one). The big size can be lowered
with NOTICEBOT_BENCH_TREE_BIG (the results say the size measured, with the seeding time and the
machine's load average). Targets are judged only at the full sizes; the ratios (T1, T3) at any.
"""

from __future__ import annotations

import os
import random
import resource
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from bench import bulk
from bench.harness import BENCH_KEY, Bench, Result, stopwatch
from bench.seed import migrated_engine
from bench.verify import _append_units, _settle
from bot.records import checkpoints
from config.settings import Settings
from storage import tree
from storage.models import RecordEntry
from storage.vault import Vault


@dataclass(frozen=True)
class Sizes:
    big: int
    small: int
    new: int  # entries after the checkpoint
    case: int  # entries proven at once
    units: int  # units of work appended for T3


FULL = Sizes(big=10_000_000, small=100_000, new=10_000, case=200, units=1_000)
QUICK = Sizes(big=20_000, small=5_000, new=1_000, case=50, units=100)
TARGET_RATIO, TARGET_INCREMENTAL_S, TARGET_FULL_S = 1.2, 2.0, 100.0
TARGET_APPEND_RATIO, TARGET_PROOFS_MS = 1.3, 100.0
REPEATS = 3  # the incremental verify and the proofs: best of
APPEND_ROUNDS = 3


def run(bench: Bench) -> list[Result]:
    sizes = QUICK if bench.quick else FULL
    big = int(os.environ.get("NOTICEBOT_BENCH_TREE_BIG", sizes.big))
    full_size = not bench.quick and big >= FULL.big
    results: list[Result] = []
    key_file = bench.workdir / "tree-checkpoint.pem"
    if not key_file.exists():
        checkpoints.generate_key_file(key_file)
    for kind in bench.kinds():
        # Alternated rounds, best of each: the machine's other load falls on both alike.
        plain_us = tree_us = float("inf")
        for _ in range(APPEND_ROUNDS):
            plain_us = min(plain_us, _append_cost(bench, kind, sizes.units, with_tree=False))
            tree_us = min(tree_us, _append_cost(bench, kind, sizes.units, with_tree=True))
        ratio = tree_us / plain_us
        results.append(Result(
            id="T3", name=f"append per entry with the tree, units of 3 ({kind})",
            value=round(tree_us, 1), unit="µs", target=f"≤ {TARGET_APPEND_RATIO}× without",
            ok=None if bench.quick else ratio <= TARGET_APPEND_RATIO,
            details={"database": kind, "without_tree_us": round(plain_us, 1),
                     "ratio": round(ratio, 3), "entries_per_round": sizes.units * 3,
                     "rounds": APPEND_ROUNDS}))
        small = _incremental(bench, kind, key_file, sizes.small, sizes.new, proofs=0)
        large = _incremental(bench, kind, key_file, big, sizes.new, proofs=sizes.case)
        ratio = large.incremental_s / small.incremental_s
        results.append(Result(
            id="T1", name=f"incremental verify, newest {sizes.new:,} of {big:,} vs of "
                          f"{sizes.small:,} ({kind})",
            value=round(ratio, 3), unit="×", target=f"≤ {TARGET_RATIO}× and ≤ "
                                                   f"{TARGET_INCREMENTAL_S:g} s",
            ok=None if bench.quick else (ratio <= TARGET_RATIO
                                         and large.incremental_s <= TARGET_INCREMENTAL_S),
            details={"database": kind, "big": big, "small": sizes.small, "new": sizes.new,
                     "seconds_big": round(large.incremental_s, 3),
                     "seconds_small": round(small.incremental_s, 3)}))
        results.append(Result(
            id="T4", name=f"inclusion proofs, {sizes.case} entries among {big:,} ({kind})",
            value=round(large.proofs_ms, 1), unit="ms", target=f"≤ {TARGET_PROOFS_MS:g} ms",
            ok=None if not full_size else large.proofs_ms <= TARGET_PROOFS_MS,
            details={"database": kind, "entries": big, "proven": sizes.case}))
        results.append(Result(
            id="T2", name=f"full verify with the tree, {big:,} entries ({kind})",
            value=round(large.full_s, 2), unit="s", target=f"≤ {TARGET_FULL_S:g} s at "
                                                         f"{FULL.big:,}",
            ok=None if not full_size else large.full_s <= TARGET_FULL_S,
            details={"database": kind, "entries": big,
                     "entries_per_s": round(big / large.full_s),
                     "tree": "hashed in the same pass as the chain",
                     "seed_seconds": round(large.seed_s, 1),
                     "cpu_seconds": round(large.cpu_s, 1),
                     "load_average": round(large.load, 2), "cpus": os.cpu_count()}))
    return results


def _append_cost(bench: Bench, kind: str, units: int, *, with_tree: bool) -> float:
    with bench.database(kind) as url:
        engine = migrated_engine(url)
        try:
            if with_tree:
                appended = _append_units(bench, engine, url, units)
            else:
                with mock.patch.object(tree, "new_nodes", lambda *_args: []):
                    appended = _append_units(bench, engine, url, units)
        finally:
            engine.dispose()
    return appended.us_per_entry


@dataclass(frozen=True)
class _Measured:
    incremental_s: float
    proofs_ms: float
    full_s: float
    seed_s: float
    load: float  # the machine's 1-minute load average before the full verify
    cpu_s: float  # CPU seconds of the full verify, its worker processes included


def _incremental(bench: Bench, kind: str, key_file: Path, total: int, new: int, *,
                 proofs: int) -> _Measured:
    with bench.database(kind) as url:
        engine = migrated_engine(url)
        settings = bench.settings(url, checkpoint_key_file=str(key_file))
        heads = bench.workdir / f"heads-{kind}-{total}.jsonl"
        heads.unlink(missing_ok=True)
        try:
            _append_units(bench, engine, url, 1)
            with stopwatch() as seeding:
                bulk.extend(engine, total - new)
            _sign(engine, settings, heads, total - new)
            with stopwatch() as more:
                bulk.extend(engine, total)
            _settle(engine)
            keys = checkpoints.known_keys(settings)
            vault = Vault((BENCH_KEY,))
            best = float("inf")
            for _ in range(REPEATS):
                with stopwatch() as took, Session(engine) as session:
                    signed = checkpoints.read_checkpoints(heads, keys)
                    result = checkpoints.verify_incremental(session, vault, signed)
                assert result.ok and result.entries == new, result
                best = min(best, took[0])
            proofs_ms = _proofs(engine, total, proofs) if proofs else 0.0
            full_s = 0.0
            load = os.getloadavg()[0]
            cpu = 0.0
            if proofs:  # the big record only
                before = _cpu_seconds()
                with stopwatch() as full, Session(engine) as session:
                    walked, problem = checkpoints.verify_full(
                        session, vault, checkpoints.read_checkpoints(heads, keys))
                assert walked.ok and walked.entries == total and problem is None, problem
                assert walked.root is not None  # the tree was hashed in the same pass
                full_s, cpu = full[0], _cpu_seconds() - before
        finally:
            engine.dispose()
    return _Measured(incremental_s=best, proofs_ms=proofs_ms, full_s=full_s,
                     seed_s=seeding[0] + more[0], load=load, cpu_s=cpu)


def _cpu_seconds() -> float:
    """User + system time of this process and its finished children (the pool's workers):
    steadier than the wall time on a machine shared with other work."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _sign(engine: Engine, settings: Settings, heads: Path, size: int) -> None:
    """A checkpoint at `size` as `make_checkpoint` writes it (its own verification of the
    seeded record skipped: that is what is timed afterwards)."""
    key = checkpoints.load_private(settings)
    with Session(engine) as session:
        assert session.exec(select(func.max(RecordEntry.seq))).one() == size
        head = session.get(RecordEntry, size)
        assert head is not None
        root = tree.root(session, size).hex()
    signed = checkpoints.sign(key, checkpoints.Checkpoint(
        size=size, root=root, head=head.hash, time="2026-12-01T00:00:00+00:00",
        previous="none"))
    heads.write_text(signed.to_line() + "\n", "utf-8")


def _proofs(engine: Engine, total: int, count: int) -> float:
    """A case's entries are spread over the record: `count` random entries, proven at once."""
    chosen = sorted(random.Random(18).sample(range(1, total + 1), count))
    best = float("inf")
    for _ in range(REPEATS):
        with stopwatch() as took, Session(engine) as session:
            hashes = dict(session.exec(select(RecordEntry.seq, RecordEntry.hash)
                                       .where(col(RecordEntry.seq).in_(chosen))).all())
            found = tree.inclusion_proofs(session, hashes, total)
        assert len(found) == count
        best = min(best, took[0])
    return best * 1000
