"""A fast synthetic loader for the record's big sizes (T1, T2, T4 at 10,000,000 entries).

`bench.verify` seeds the way the product writes: every payload sealed on its own (Fernet, the
bulk of the cost), about 65 s per million entries. Here the chain and the tree are built
directly instead: a pool of POOL sealed payloads (a click's pattern, as `bench.verify._entry`
makes them) is reused round-robin, so a row costs its entry hash, its leaf and the subtrees it
completes, and its share of a COPY (PostgreSQL) or executemany (SQLite). What verification
does is unchanged: it still decrypts every row's payload and checks it against the digest,
hashes every entry and every tree node.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bench.harness import BENCH_KEY
from bench.seed import bulk_load
from bench.verify import ENTRY_COLUMNS, NODE_COLUMNS, PAYLOAD_COLUMNS, _entry, last_entry
from storage import merkle, record, tree
from storage.vault import Vault

POOL = 4096  # distinct sealed payloads
BATCH = 50_000  # rows per insert transaction


def extend(engine: Engine, total: int) -> None:
    """Chain synthetic entries onto the record's head, with their tree nodes, until it holds
    `total` (the record must hold at least one entry: its head's time and hash start it)."""
    with Session(engine) as session:
        head = session.exec(last_entry()).first()
        assert head is not None, "append one unit first"
        builder = merkle.TreeBuilder.at(head.seq, lambda wanted: tree.nodes(session, wanted))
    seq, prev_hash, base = head.seq, head.hash, head.at + timedelta(seconds=1)
    pool = _pool()
    fromhex, leaf_of = bytes.fromhex, merkle.leaf_hash
    for start in range(seq, total, BATCH):
        entries: list[tuple[Any, ...]] = []
        payloads: list[tuple[int, str]] = []
        nodes: list[tuple[int, int, str]] = []
        for i in range(start, min(start + BATCH, total)):
            seq += 1
            actor, kind, action, case_id, digest, body = pool[i % POOL]
            at = base + timedelta(milliseconds=i)  # whole milliseconds, as `append` keeps them
            entry_hash = record.entry_hash(prev_hash=prev_hash, seq=seq, at=at, actor=actor,
                                           kind=kind, action=action, case_id=case_id,
                                           payload_digest=digest)
            entries.append((seq, at, actor, kind, action, case_id, digest, prev_hash,
                            entry_hash))
            payloads.append((seq, body))
            nodes.extend((level, idx, node.hex())
                         for level, idx, node in builder.add(leaf_of(fromhex(entry_hash))))
            prev_hash = entry_hash
        _insert(engine, entries, payloads, nodes)
    assert seq == total, (seq, total)


def _insert(engine: Engine, entries: list[tuple[Any, ...]], payloads: list[tuple[int, str]],
            nodes: list[tuple[int, int, str]]) -> None:
    """COPY on PostgreSQL (`bench.seed.bulk_load`). On SQLite one transaction for the three
    tables, times already as the text SQLAlchemy stores, and no fsync (a benchmark's setup:
    a crash would only mean seeding again)."""
    if engine.dialect.name != "sqlite":
        bulk_load(engine, "record_entry", ENTRY_COLUMNS, entries)
        bulk_load(engine, "record_payload", PAYLOAD_COLUMNS, payloads)
        bulk_load(engine, "record_tree_node", NODE_COLUMNS, nodes)
        return
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        driver.execute("PRAGMA synchronous=OFF")
        driver.execute("BEGIN")
        for table, columns, rows in (
                ("record_entry", ENTRY_COLUMNS,
                 ((seq, f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond:06d}", *rest)
                  for seq, at, *rest in entries)),
                ("record_payload", PAYLOAD_COLUMNS, payloads),
                ("record_tree_node", NODE_COLUMNS, nodes)):
            driver.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                               f"({', '.join('?' for _ in columns)})", rows)
        driver.execute("COMMIT")
    finally:
        raw.close()


def _pool() -> list[tuple[str, str, str, str | None, str, str]]:
    vault = Vault((BENCH_KEY,))
    pool = []
    for i in range(POOL):
        actor, kind, action, case_id, payload = _entry(i)
        body = record.canonical_json(payload)
        pool.append((actor, kind, action, case_id, record.sha256_hex(body), vault.seal(body)))
    return pool
