"""The append-only, hash-chained interaction record (directive §6; docs/obligations.md O32).

Each entry's hash covers its predecessor's hash, its sequence number, time, actor, kind, action,
case and the SHA-256 digest of its payload. The payload itself lives in `record_payload`, so that
disposition can remove content while the chain still verifies.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Generator, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, create_engine, func
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, select

from storage import chain_postgres, merkle, tree
from storage.models import DispositionLog, RecordEntry, RecordPayload
from storage.opener import Opener, open_body
from storage.vault import Vault

GENESIS_HASH = "0" * 64
# The action of the entry the disposition path appends for each disposition log row.
DISPOSED_ACTION = "records.disposed"


# Built once: json.dumps with these options would build the same encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              default=str)


def canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)


def sha256_hex(data: str) -> str:
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    kind: str,
    action: str,
    case_id: str | None,
    payload_digest: str,
) -> str:
    return _hash(prev_hash, seq, at, actor, kind, action, case_id, payload_digest)


def _hash(prev_hash: str, seq: int, at: datetime, actor: str, kind: str, action: str,
          case_id: str | None, payload_digest: str) -> str:
    """`entry_hash` without keyword arguments, for the verification's inner loop."""
    material = [prev_hash, seq, at.isoformat(), actor, kind, action, case_id, payload_digest]
    return hashlib.sha256(_CANONICAL.encode(material).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewEntry:
    """One entry to append: what its hash covers, and its payload."""

    at: datetime
    actor: str
    kind: str
    action: str
    case_id: str | None = None
    payload: dict[str, Any] | None = None


def append(
    session: Session,
    *,
    at: datetime,
    actor: str,
    kind: str,
    action: str,
    case_id: str | None = None,
    payload: dict[str, Any] | None = None,
    vault: Vault | None = None,
) -> RecordEntry:
    """Append one entry in the caller's transaction (`append_many` of one)."""
    return append_many(session, [NewEntry(at=at, actor=actor, kind=kind, action=action,
                                          case_id=case_id, payload=payload)], vault=vault)[0]


def append_many(session: Session, new: list[NewEntry], *,
                vault: Vault | None = None) -> list[RecordEntry]:
    """Append entries, in order, in the caller's transaction, and return them. Appends are
    serialized (advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite) so two writers never
    chain to the same predecessor; the primary key on `seq` would refuse a fork even without
    the lock.

    The lock is held from here to the caller's commit, and every writer waits on it, so as
    little as possible happens while it is held: payloads are sealed and digested, and the
    transaction's other changes flushed, before it is taken; on PostgreSQL the lock and the
    chain's head then take one round trip and the entries, payloads and tree nodes one more.
    Entries are written as rows, not through the ORM: `appended(session)` lists them for
    whatever acts on commit (the SIEM stream)."""
    if not new:
        return []
    prepared = []
    for item in new:
        if item.at.tzinfo is None:
            raise ValueError("naive datetime given to the record")
        # What is hashed is exactly what is stored: a value stored as text but hashed as given
        # (a JSON number as the actor) would break the chain for good (R7).
        body = canonical_json(item.payload or {})
        prepared.append((
            item.at.replace(microsecond=(item.at.microsecond // 1000) * 1000),  # portable
            _stored(item.actor), _stored(item.kind), _stored(item.action),
            None if item.case_id is None else _stored(item.case_id),
            sha256_hex(body), vault.seal(body) if vault else body))
    session.flush()  # the interaction's own changes, before the lock
    postgres = session.get_bind().dialect.name == "postgresql"
    connection = session.connection()  # Core statements: the ORM would track nothing here
    head = chain_postgres.locked_head(session) if postgres else connection.execute(_HEAD).first()
    seq, prev_hash = (int(head[0]), str(head[1])) if head else (0, GENESIS_HASH)
    first_seq, first_prev = seq + 1, prev_hash
    entries: list[RecordEntry] = []
    rows: list[chain_postgres.Row] = []
    for at, actor, kind, action, case_id, digest, stored_body in prepared:
        seq += 1
        digest_of_entry = _hash(prev_hash, seq, at, actor, kind, action, case_id, digest)
        entries.append(RecordEntry(seq=seq, at=at, actor=actor, kind=kind, action=action,
                                   case_id=case_id, payload_digest=digest,
                                   prev_hash=prev_hash, hash=digest_of_entry))
        rows.append((seq, at, actor, kind, action, case_id, digest, prev_hash,
                     digest_of_entry, stored_body))
        prev_hash = digest_of_entry
    nodes = tree.new_nodes(session, first_seq, [entry.hash for entry in entries], first_prev)
    if postgres:
        chain_postgres.insert(session, rows, nodes)
    else:
        names = chain_postgres.ROW_NAMES[:-1]
        connection.execute(_INSERT_ENTRY,
                           [dict(zip(names, row[:-1], strict=True)) for row in rows])
        connection.execute(_INSERT_PAYLOAD, [{"seq": row[0], "body": row[-1]} for row in rows])
        tree.insert_nodes(connection, nodes)
    # Kept per transaction: a session that lives through many commits with nothing taking
    # them (no SIEM stream) must not keep every entry it ever appended.
    transaction = session.get_transaction()
    kept: tuple[object, list[RecordEntry]] | None = session.info.get(_APPENDED)
    if kept is None or kept[0] is not transaction:
        kept = session.info[_APPENDED] = (transaction, [])
    kept[1].extend(entries)
    return entries


_APPENDED = "noticebot.record.appended"
_INSERT_ENTRY = sqlalchemy.insert(RecordEntry.__table__)  # type: ignore[attr-defined]
_INSERT_PAYLOAD = sqlalchemy.insert(RecordPayload.__table__)  # type: ignore[attr-defined]
_HEAD = select(RecordEntry.seq, RecordEntry.hash).order_by(col(RecordEntry.seq).desc()).limit(1)


def appended(session: sqlalchemy.orm.Session) -> list[RecordEntry]:
    """Takes the entries appended in the session's transaction so far (a commit hook streams
    them; a rollback hook drops them)."""
    entries: list[RecordEntry] = session.info.pop(_APPENDED, (None, []))[1]
    return entries


def _stored(value: object) -> str:
    """A column value as the database keeps it: text, without NUL (PostgreSQL has none)."""
    return (value if isinstance(value, str) else str(value)).replace("\x00", "\ufffd")


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None
    # The Merkle root over the walked entries (RFC 9162), hashed in the same pass as the chain;
    # None when the ranges did not fall on subtree boundaries (then the caller hashes apart).
    root: bytes | None = field(default=None, compare=False)
    # {seq: (entry hash, root of the tree of `seq` leaves)} for the sizes asked for.
    marks: dict[int, tuple[str, bytes]] = field(default_factory=dict, compare=False)


# Below this many entries, starting worker processes (~1 s each: a fresh interpreter and its
# imports) costs more than it saves.
PARALLEL_FROM = 100_000
# Several ranges per worker, so that a slow range does not leave the other workers idle.
RANGES_PER_WORKER = 4
FETCH_BATCH = 5000

_CHAIN_COLUMNS = (
    col(RecordEntry.seq), col(RecordEntry.at), col(RecordEntry.actor), col(RecordEntry.kind),
    col(RecordEntry.action), col(RecordEntry.case_id), col(RecordEntry.payload_digest),
    col(RecordEntry.prev_hash), col(RecordEntry.hash), col(RecordPayload.body),
)


def verify(
    session: Session, vault: Vault | None = None, *, workers: int | None = None,
    per_range: int | None = None, marks: Iterable[int] = (),
) -> VerifyResult:
    """Walk the chain from the first entry; report the first entry that does not verify.
    A disposed entry (content removed, tombstone kept) still verifies.

    Every payload is decrypted: the chain covers the SHA-256 of the plaintext, and a Fernet
    token is not bound to its entry, so only the plaintext shows a body moved or replaced.
    That is most of the cost, so a long chain is verified in ranges by `workers` processes
    (default: one per CPU from PARALLEL_FROM entries on), each range checked on its own and
    the ranges then joined at their boundaries. `per_range` forces ranges of that many
    sequence numbers (run in this process if `workers` is 1).

    The same pass hashes the Merkle tree (each range its complete subtrees, joined like the
    chain), so `--full` reads every row once; `marks` asks for the root at those sizes (the
    signed checkpoints')."""
    vault = vault or Vault(())
    wanted = frozenset(marks)
    connection = session.connection()
    head = connection.execute(sqlalchemy.select(func.max(RecordEntry.seq))).scalar()
    disposals = disposals_of(connection, vault)
    url = _shareable_url(connection)
    if workers is None:
        workers = _cpus() if head is not None and head >= PARALLEL_FROM else 1
    if head is None or head < 1 or url is None or (per_range is None and workers < 2):
        with closing(_chain_rows(connection)) as rows:
            return _join([_walk(rows, vault, disposals, wanted)])
    # A power of two (rounded down: between one and two times RANGES_PER_WORKER ranges per
    # worker): each full range is then one complete subtree of the Merkle tree.
    per_range = per_range or 1 << ((-(-head // (workers * RANGES_PER_WORKER))).bit_length() - 1)
    # Entries above `head` are not in the caller's view of the record; the ones up to it never
    # change (append-only), so the workers' own connections see exactly these.
    lows = range(1, head + 1, per_range)
    jobs = [_Range(url=url, vault=vault, disposals=disposals, low=None if n == 0 else low,
                   high=min(low + per_range - 1, head),
                   marks=frozenset(m for m in wanted if low <= m < low + per_range))
            for n, low in enumerate(lows)]
    if workers < 2:
        return _join(map(_verify_range, jobs))
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        result = _join(pool.imap(_verify_range, jobs))  # stops at the first broken range
        # The ranges still running finish before the pool goes: leaving the block terminates
        # the workers, and one killed while it sends its result keeps the result queue's lock
        # for good, so the pool's teardown waited for ever (seen once in the test suite).
        pool.close()
        pool.join()
        return result


def verify_after(session: Session, vault: Vault | None, *, seq: int, hash: str,
                 up_to: int | None = None) -> VerifyResult:
    """Verify only the entries after `seq` (through `up_to`), whose hash is known good (a
    verified checkpoint): the cost follows the new entries, not the record's size."""
    connection = session.connection()
    vault = vault or Vault(())
    disposals = disposals_of(connection, vault)  # content may be missing only where disposed
    start = _Stretch(entries=seq, first_seq=1, first_prev_hash=GENESIS_HASH, last_seq=seq,
                     last_hash=hash, edge=None) if seq else _Stretch()
    with closing(_chain_rows(connection, low=seq + 1, high=up_to)) as rows:
        return _join([start, _walk(rows, vault, disposals)])


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _shareable_url(connection: Connection) -> str | None:
    """The database URL other processes can open, or None (an in-memory SQLite database)."""
    url = connection.engine.url
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
        return None
    return url.render_as_string(hide_password=False)


def _chain_rows(
    connection: Connection, low: int | None = None, high: int | None = None
) -> Generator[tuple[Any, ...], None, None]:
    """Plain column tuples (no ORM objects: they cost more than the hashing), streamed."""
    statement = (
        sqlalchemy.select(*_CHAIN_COLUMNS)
        .select_from(RecordEntry)
        .join(RecordPayload, col(RecordPayload.seq) == col(RecordEntry.seq), isouter=True)
        .order_by(col(RecordEntry.seq))
        .execution_options(yield_per=FETCH_BATCH)
    )
    if low is not None:
        statement = statement.where(col(RecordEntry.seq) >= low)
    if high is not None:
        statement = statement.where(col(RecordEntry.seq) <= high)
    with connection.execute(statement) as result:  # closes a server-side cursor on early exit
        yield from result.tuples()


@dataclass(frozen=True)
class Disposals:
    """Whose content may be missing (§6, O32): what a disposition log row names *and* the chain
    confirms with the disposition's own entry, appended after the content went. Content missing
    anywhere else was deleted behind the disposition path's back."""

    entries: frozenset[int] = frozenset()  # interaction entries disposed of one by one
    cases: dict[str, int] = field(default_factory=dict)  # case file -> its disposition entry

    def covers(self, seq: int, case_id: str | None) -> bool:
        if seq in self.entries:
            return True
        return case_id is not None and seq < self.cases.get(case_id, 0)


def disposals_of(connection: Connection, vault: Vault) -> Disposals:
    """Read the disposition log and the chain's disposition entries (few rows: the entries are
    found through a partial index, and none is read when the log is empty)."""
    logs = {
        log_id: (record_type, ref)
        for log_id, record_type, ref, approved_by, item in connection.execute(sqlalchemy.select(
            col(DispositionLog.id), col(DispositionLog.record_type),
            col(DispositionLog.record_ref), col(DispositionLog.approved_by),
            col(DispositionLog.schedule_item)))
        if approved_by and item  # a log row must say by whom and under which schedule item
    }
    if not logs:
        return Disposals()
    entries: set[int] = set()
    cases: dict[str, int] = {}
    confirming = connection.execute(
        sqlalchemy.select(col(RecordEntry.seq), col(RecordEntry.case_id), col(RecordPayload.body))
        .join(RecordPayload, col(RecordPayload.seq) == col(RecordEntry.seq))
        .where(col(RecordEntry.action) == DISPOSED_ACTION))
    for seq, case_id, body in confirming:
        plain = open_body(vault, body)
        if plain is None:
            continue  # the walk reports it
        payload = json.loads(plain)
        log = logs.get(payload.get("log_id"))
        if log is None or log != (payload.get("record_type"), payload.get("record")):
            continue
        record_type, ref = log
        if record_type == "case_file" and case_id == ref:
            cases[ref] = min(seq, cases.get(ref, seq))
        elif record_type == "interaction" and ref.startswith("entry:"):
            disposed = int(ref.removeprefix("entry:"))
            if disposed < seq:
                entries.add(disposed)
    return Disposals(frozenset(entries), cases)


@dataclass(frozen=True)
class _Range:
    url: str
    vault: Vault
    disposals: Disposals
    low: int | None  # None: from the very first row, whatever its number
    high: int
    marks: frozenset[int] = frozenset()


def _verify_range(job: _Range) -> _Stretch:
    """Runs in a worker process: its own connection, a plain one (on SQLite, not the BEGIN
    IMMEDIATE engine, which would queue the workers behind each other and the caller)."""
    engine = create_engine(job.url, poolclass=NullPool)
    try:
        with engine.connect() as connection, closing(
                _chain_rows(connection, job.low, job.high)) as rows:
            return _walk(rows, job.vault, job.disposals, job.marks)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class _Stretch:
    """How consecutive rows verified among themselves. The first row's number and link are
    only reported: whoever knows what precedes the stretch checks them (`_join`)."""

    entries: int = 0  # verified, from the first row on
    first_seq: int | None = None
    first_prev_hash: str | None = None
    last_seq: int | None = None  # the last verified row
    last_hash: str | None = None
    broken_seq: int | None = None
    problem: str | None = None
    # The Merkle tree of the stretch's own leaves: its right edge (one complete subtree per set
    # bit of `entries`, largest first), and the edge at each mark {seq: (entry hash, edge)}.
    edge: tuple[bytes, ...] | None = ()  # None: not hashed (a stretch known from a checkpoint)
    marks: dict[int, tuple[str, tuple[bytes, ...]]] = field(default_factory=dict)


def _walk(rows: Iterable[tuple[Any, ...]], vault: Vault, disposals: Disposals,
          marks: frozenset[int] = frozenset()) -> _Stretch:
    opened = Opener(vault)
    first_seq: int | None = None
    first_prev_hash: str | None = None
    expected_seq, prev_hash, count = 0, "", 0
    sha256, fromhex = hashlib.sha256, bytes.fromhex
    edge: list[bytes] = []
    marked: dict[int, tuple[str, tuple[bytes, ...]]] = {}
    for seq, at, actor, kind, action, case_id, digest, link, stored_hash, body in rows:
        if first_seq is None:
            first_seq, first_prev_hash = expected_seq, prev_hash = seq, link
        problem = None
        if seq != expected_seq:
            problem = f"entry {expected_seq} is missing (next entry found is {seq})"
        elif link != prev_hash:
            problem = "does not chain to the previous entry (removed or reordered)"
        elif stored_hash != _hash(link, seq, at, actor, kind, action, case_id, digest):
            problem = "hash does not match its contents (altered)"
        elif body is None:
            if not disposals.covers(seq, case_id):
                problem = "content is missing and no disposition log covers it (deleted)"
        elif (plain := opened(body)) is None:
            problem = "payload cannot be decrypted (is NOTICEBOT_ENCRYPTION_KEYS set?)"
        elif sha256_hex(plain) != digest:
            problem = "payload does not match its digest (altered)"
        if problem is not None:
            return _Stretch(count, first_seq, first_prev_hash,
                            expected_seq - 1 if count else None, prev_hash if count else None,
                            broken_seq=expected_seq, problem=problem)
        # The leaf (RFC 9162: 0x00 ‖ entry hash) and one merge per trailing 1 bit of its
        # index in the stretch: the right edge as a plain list, no per-node objects.
        node = sha256(b"\x00" + fromhex(stored_hash)).digest()
        for _ in range((count ^ (count + 1)).bit_length() - 1):
            node = sha256(b"\x01" + edge.pop() + node).digest()
        edge.append(node)
        if seq in marks:
            marked[seq] = (stored_hash, tuple(edge))
        count += 1
        expected_seq, prev_hash = seq + 1, stored_hash
    return _Stretch(count, first_seq, first_prev_hash, expected_seq - 1 if count else None,
                    prev_hash if count else None, edge=tuple(edge), marks=marked)


def _join(stretches: Iterable[_Stretch]) -> VerifyResult:
    """Chain the stretches in order from the genesis; stop at the first problem. Their trees
    join too when each starts on a boundary of its largest subtree (ranges of a power of two)."""
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    edge: list[tuple[int, bytes]] | None = []  # the whole tree's right edge: (level, hash)
    marks: dict[int, tuple[str, bytes]] = {}
    for stretch in stretches:
        if stretch.first_seq is None:
            continue  # a range with no rows: the next row found tells what is missing
        problem = None
        if stretch.first_seq != expected_seq:
            problem = f"entry {expected_seq} is missing (next entry found is {stretch.first_seq})"
        elif stretch.first_prev_hash != prev_hash:
            problem = "does not chain to the previous entry (removed or reordered)"
        if problem is not None:
            return VerifyResult(ok=False, entries=count, head_seq=expected_seq - 1,
                                head_hash=prev_hash, broken_seq=expected_seq, problem=problem)
        if stretch.broken_seq is not None:
            return VerifyResult(ok=False, entries=count + stretch.entries,
                                head_seq=stretch.broken_seq - 1,
                                head_hash=stretch.last_hash or prev_hash,
                                broken_seq=stretch.broken_seq, problem=stretch.problem)
        assert stretch.last_seq is not None and stretch.last_hash is not None
        if edge is not None:
            edge = _graft(edge, count, stretch, marks)
        count += stretch.entries
        expected_seq, prev_hash = stretch.last_seq + 1, stretch.last_hash
    root = merkle.fold([h for _, h in edge]) if edge is not None and count else None
    return VerifyResult(ok=True, entries=count, head_seq=expected_seq - 1, head_hash=prev_hash,
                        root=root, marks=marks if edge is not None else {})


def _levels(size: int) -> list[int]:
    """The levels of the complete subtrees on the right edge of a tree of `size` leaves."""
    return [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]


def _graft(edge: list[tuple[int, bytes]], size: int, stretch: _Stretch,
           marks: dict[int, tuple[str, bytes]]) -> list[tuple[int, bytes]] | None:
    """Add a stretch's subtrees to the right edge of the tree of `size` leaves before it; None
    if the stretch does not start on a boundary of its largest subtree (its tree is not a
    part of the whole one)."""
    levels = _levels(stretch.entries)
    if stretch.edge is None or (levels and size % (1 << levels[0])):
        return None
    for seq, (entry_hash, local) in stretch.marks.items():
        marks[seq] = (entry_hash, merkle.fold([h for _, h in edge] + list(local)))
    edge = list(edge)
    for level, node in zip(levels, stretch.edge, strict=True):
        while edge and edge[-1][0] == level:
            _, left = edge.pop()
            node = merkle.node_hash(left, node)
            level += 1
        edge.append((level, node))
    return edge


def payload_of(session: Session, seq: int, vault: Vault | None = None) -> dict[str, Any] | None:
    row = session.get(RecordPayload, seq)
    if row is None:
        return None
    return dict(json.loads(vault.open(row.body) if vault else row.body))
