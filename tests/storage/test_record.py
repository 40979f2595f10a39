"""The interaction record (directive §6, R7): a hash chain that detects alteration, removal and
reordering, that PostgreSQL refuses to change, and that concurrent writers never fork."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, event, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, func, select

from bot.core.service import Core
from bot.messages import ActionId
from storage import record, tree
from storage.chain_postgres import CHAIN_LOCK_KEY
from storage.db import transaction
from storage.models import DispositionLog, RecordEntry
from storage.vault import Vault
from tests.conftest import START, TEST_KEY, on_postgres
from tests.helpers import OFFICER, open_case, press, run_audit_verify, run_together, to_approval

postgres_only = pytest.mark.skipif(not on_postgres(),
                                   reason="needs NOTICEBOT_TEST_DATABASE_URL (PostgreSQL)")

# Every column of record_entry but its sequence number, i.e. what a reordering moves around.
CONTENT = ("at", "actor", "kind", "action", "case_id", "payload_digest")
LINKS = ("prev_hash", "hash")


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def walked(core: Core) -> Core:
    """A real session: one case opened, checked and sent for approval, a second one opened."""
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    open_case(core)
    return core


def verify(engine: Engine) -> record.VerifyResult:
    with Session(engine) as session:
        return record.verify(session, Vault((TEST_KEY,)))


def row_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(RecordEntry)).one()


def seqs(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return list(session.exec(select(RecordEntry.seq).order_by(col(RecordEntry.seq))))


def middle(engine: Engine) -> int:
    numbers = seqs(engine)
    assert len(numbers) >= 10, "the walked session should leave a real chain"
    return numbers[len(numbers) // 2]


@contextmanager
def tampering(engine: Engine) -> Iterator[Connection]:
    """Raw SQL behind the application's back. On PostgreSQL the append-only triggers (and the
    foreign key, itself a trigger) are switched off for this transaction only."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            connection.execute(text("PRAGMA defer_foreign_keys = ON"))
        yield connection


def raw_entry(connection: Connection, seq: int) -> dict[str, Any]:
    row = connection.execute(text("SELECT * FROM record_entry WHERE seq = :seq"),
                             {"seq": seq}).mappings().one()
    return dict(row)


def raw_body(connection: Connection, seq: int) -> str:
    return str(connection.execute(text("SELECT body FROM record_payload WHERE seq = :seq"),
                                  {"seq": seq}).scalar_one())


def set_entry(connection: Connection, seq: int, values: dict[str, Any]) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    connection.execute(text(f"UPDATE record_entry SET {assignments} WHERE seq = :seq_"),
                       {**values, "seq_": seq})


def set_body(connection: Connection, seq: int, body: str) -> None:
    connection.execute(text("UPDATE record_payload SET body = :body WHERE seq = :seq"),
                       {"body": body, "seq": seq})


def delete_entry(connection: Connection, seq: int) -> None:
    connection.execute(text("DELETE FROM record_payload WHERE seq = :seq"), {"seq": seq})
    connection.execute(text("DELETE FROM record_entry WHERE seq = :seq"), {"seq": seq})


def delete_content(connection: Connection, *numbers: int) -> None:
    connection.execute(text("DELETE FROM record_payload WHERE seq IN :seqs")
                       .bindparams(bindparam("seqs", expanding=True)), {"seqs": list(numbers)})


def dispose_of(connection: Connection, seq: int) -> None:
    """What the disposition path leaves behind for one entry: the content gone, a disposition
    log row (by whom, under which schedule item) and the record entry that says so."""
    log = DispositionLog(record_type="interaction", record_ref=f"entry:{seq}",
                         schedule_item="GRS-5.2-020", authority="DAA-GRS-2022-0009-0002",
                         eligible_on=START.date(), disposed_on=START.date(),
                         approved_by="U0REC1", entries_affected=1)
    with Session(bind=connection) as session:
        session.add(log)
        session.flush()
        record.append(session, at=START, actor="U0REC1", kind="state",
                      action="records.disposed", payload={
                          "record_type": "interaction", "record": f"entry:{seq}",
                          "schedule_item": log.schedule_item, "log_id": log.id},
                      vault=Vault((TEST_KEY,)))
        session.flush()
    delete_content(connection, seq)


def assert_broken_at(engine: Engine, seq: int, problem: str) -> record.VerifyResult:
    result = verify(engine)
    assert not result.ok
    assert result.broken_seq == seq, result
    assert problem in (result.problem or ""), result
    assert result.entries == seq - 1
    assert result.head_seq == seq - 1
    return result


# --- an intact chain -------------------------------------------------------------------------


def test_r7_chain_of_a_real_session_verifies(walked: Core) -> None:
    result = verify(walked.engine)
    assert result.ok, result
    assert result.broken_seq is None and result.problem is None
    assert result.entries == row_count(walked.engine)
    assert seqs(walked.engine) == list(range(1, result.entries + 1))
    with Session(walked.engine) as session:
        head = session.get(RecordEntry, result.head_seq)
        assert head is not None and head.hash == result.head_hash


def test_r7_empty_record_verifies(bare_core: Core) -> None:
    result = verify(bare_core.engine)
    assert result == record.VerifyResult(ok=True, entries=0, head_seq=0,
                                         head_hash=record.GENESIS_HASH)


def test_r7_disposed_payload_keeps_the_chain_verifiable(walked: Core) -> None:
    """Disposition removes content; the digest stays in the chain, so it still verifies (as
    long as the disposition log and its record entry account for it: test_record_content.py)."""
    seq = middle(walked.engine)
    with tampering(walked.engine) as connection:
        dispose_of(connection, seq)
    result = verify(walked.engine)
    assert result.ok, result
    assert result.entries == row_count(walked.engine)


# --- tampering is detected, at the entry tampered with ---------------------------------------


@pytest.mark.parametrize(("column", "value"), [
    pytest.param(column, value, id=column) for column, value in (
        ("actor", "U0EVIL"),
        ("kind", "admin"),
        ("action", "approval.decided"),
        ("case_id", "2026-9999"),
        ("payload_digest", "0" * 64),
    )
])
def test_r7_altered_entry_detected(walked: Core, column: str, value: str) -> None:
    seq = middle(walked.engine)
    with tampering(walked.engine) as connection:
        assert raw_entry(connection, seq)[column] != value
        set_entry(connection, seq, {column: value})
    assert_broken_at(walked.engine, seq, "hash does not match its contents (altered)")


def test_r7_altered_time_detected(walked: Core) -> None:
    seq = middle(walked.engine)
    with tampering(walked.engine) as connection:
        at = raw_entry(connection, seq)["at"]
        # SQLite hands back the stored text, PostgreSQL a datetime; move either by an hour.
        if isinstance(at, str):
            moved: Any = (datetime.fromisoformat(at) + timedelta(hours=1)).strftime(
                "%Y-%m-%d %H:%M:%S.%f")
        else:
            moved = at + timedelta(hours=1)
        set_entry(connection, seq, {"at": moved})
    assert_broken_at(walked.engine, seq, "altered")


def test_r7_altered_payload_detected(walked: Core) -> None:
    seq = middle(walked.engine)
    with tampering(walked.engine) as connection:
        assert raw_body(connection, seq) != '{"tampered":true}'
        set_body(connection, seq, '{"tampered":true}')
    assert_broken_at(walked.engine, seq, "payload does not match its digest (altered)")


def test_r7_altered_entry_with_recomputed_own_hash_detected(walked: Core) -> None:
    """Rewriting an entry and fixing up its own hash still breaks the link to the next one."""
    seq = middle(walked.engine)
    with Session(walked.engine) as session:
        original = session.get(RecordEntry, seq)
        assert original is not None
        forged = record.entry_hash(
            prev_hash=original.prev_hash, seq=seq, at=original.at, actor="U0EVIL",
            kind=original.kind, action=original.action, case_id=original.case_id,
            payload_digest=original.payload_digest)
    assert forged != original.hash
    with tampering(walked.engine) as connection:
        set_entry(connection, seq, {"actor": "U0EVIL", "hash": forged})
    with Session(walked.engine) as session:
        altered = session.get(RecordEntry, seq)
        assert altered is not None and altered.actor == "U0EVIL"
    assert_broken_at(walked.engine, seq + 1, "does not chain to the previous entry")


@pytest.mark.parametrize("where", ["first", "middle"])
def test_r7_deleted_entry_detected(walked: Core, where: str) -> None:
    seq = 1 if where == "first" else middle(walked.engine)
    total = row_count(walked.engine)
    with tampering(walked.engine) as connection:
        delete_entry(connection, seq)
    assert row_count(walked.engine) == total - 1
    result = assert_broken_at(walked.engine, seq, f"entry {seq} is missing")
    assert f"next entry found is {seq + 1}" in (result.problem or "")


def test_r7_deleted_entry_with_renumbering_detected(walked: Core) -> None:
    """Closing the gap by renumbering the later entries does not hide the removal."""
    seq = middle(walked.engine)
    last = seqs(walked.engine)[-1]
    with tampering(walked.engine) as connection:
        delete_entry(connection, seq)
        for old in range(seq + 1, last + 1):
            for table in ("record_payload", "record_entry"):
                connection.execute(text(f"UPDATE {table} SET seq = :new WHERE seq = :old"),
                                   {"new": old - 1, "old": old})
    assert seqs(walked.engine) == list(range(1, last))
    assert_broken_at(walked.engine, seq, "does not chain to the previous entry")


@pytest.mark.parametrize(("moved", "gap"), [
    # Two entries trade contents, each keeping its place's hashes ...
    pytest.param(CONTENT, 1, id="contents-adjacent"),
    pytest.param(CONTENT, 5, id="contents-apart"),
    # ... or trade whole rows, hashes included.
    pytest.param(CONTENT + LINKS, 1, id="rows-adjacent"),
    pytest.param(CONTENT + LINKS, 5, id="rows-apart"),
])
def test_r7_reordered_entries_detected(walked: Core, moved: tuple[str, ...], gap: int) -> None:
    first = middle(walked.engine)
    second = first + gap
    with tampering(walked.engine) as connection:
        a, b = raw_entry(connection, first), raw_entry(connection, second)
        assert any(a[name] != b[name] for name in CONTENT), "pick two different entries"
        body_a, body_b = raw_body(connection, first), raw_body(connection, second)
        # The hash column is unique: park one row's hash while the two trade places.
        if "hash" in moved:
            set_entry(connection, first, {"hash": "f" * 64})
        set_entry(connection, second, {name: a[name] for name in moved})
        set_entry(connection, first, {name: b[name] for name in moved})
        set_body(connection, first, body_b)
        set_body(connection, second, body_a)
    problem = "does not chain" if "prev_hash" in moved else "hash does not match its contents"
    assert_broken_at(walked.engine, first, problem)


def test_r7_swapped_hashes_detected(walked: Core) -> None:
    first = middle(walked.engine)
    with tampering(walked.engine) as connection:
        a, b = raw_entry(connection, first), raw_entry(connection, first + 1)
        set_entry(connection, first, {"hash": "f" * 64})
        set_entry(connection, first + 1, {"hash": a["hash"]})
        set_entry(connection, first, {"hash": b["hash"]})
    assert_broken_at(walked.engine, first, "hash does not match its contents (altered)")


# --- PostgreSQL refuses changes outright -----------------------------------------------------


@postgres_only
@pytest.mark.parametrize("statement", [
    "UPDATE record_entry SET actor = 'U0EVIL' WHERE seq = :seq",
    "DELETE FROM record_entry WHERE seq = :seq",
    "TRUNCATE record_entry CASCADE",
    "TRUNCATE record_payload, record_entry",
    "UPDATE record_payload SET body = '{}' WHERE seq = :seq",
])
def test_r7_postgres_refuses_update_and_delete(walked: Core, statement: str) -> None:
    engine = walked.engine
    before = verify(engine)
    assert before.ok
    seq = middle(engine)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement), {"seq": seq} if ":seq" in statement else {})
    after = verify(engine)
    assert after == before
    assert row_count(engine) == before.entries


@postgres_only
def test_r7_postgres_refuses_delete_even_after_payload_disposal(walked: Core) -> None:
    engine = walked.engine
    seq = middle(engine)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("DELETE FROM record_payload WHERE seq = :seq"), {"seq": seq})
        connection.execute(text("DELETE FROM record_entry WHERE seq = :seq"), {"seq": seq})
    assert verify(engine).ok
    with Session(engine) as session:
        assert record.payload_of(session, seq, Vault((TEST_KEY,))) is not None  # rolled back


# --- concurrent writers ----------------------------------------------------------------------


def assert_linear_chain(engine: Engine, expected: int) -> None:
    result = verify(engine)
    assert result.ok, result
    assert result.entries == expected
    assert seqs(engine) == list(range(1, expected + 1))
    with Session(engine) as session:
        prev_hashes = list(session.exec(select(RecordEntry.prev_hash)))
        hashes = list(session.exec(select(RecordEntry.hash)))
    assert len(set(prev_hashes)) == len(prev_hashes) == expected
    assert len(set(hashes)) == expected


def append_batch(engine: Engine, writer: int, count: int) -> None:
    for n in range(count):
        with transaction(engine) as session:
            record.append(session, at=START + timedelta(milliseconds=n), actor=f"writer-{writer}",
                          kind="state", action="x", payload={"writer": writer, "n": n})


def test_sequential_writers_build_one_chain(bare_core: Core) -> None:
    engine = bare_core.engine
    before = row_count(engine)
    for n in range(25):
        for writer in range(8):
            with transaction(engine) as session:
                record.append(session, at=START, actor=f"writer-{writer}", kind="state",
                              action="x", payload={"writer": writer, "n": n})
    assert_linear_chain(engine, before + 200)
    with Session(engine) as session:
        assert record.payload_of(session, before + 200) == {"writer": 7, "n": 24}


@postgres_only
def test_concurrent_writers_never_fork_the_chain(bare_core: Core) -> None:
    engine = bare_core.engine
    writers, per_writer = 8, 25
    before = row_count(engine)
    run_together(*[partial(append_batch, engine, w, per_writer) for w in range(writers)])
    assert_linear_chain(engine, before + writers * per_writer)
    with Session(engine) as session:
        by_writer = session.exec(
            select(RecordEntry.actor, func.count()).group_by(col(RecordEntry.actor))).all()
    assert sorted(tuple(row) for row in by_writer) == [
        (f"writer-{w}", per_writer) for w in range(writers)]


# --- `noticebot audit verify` ----------------------------------------------------------------


@pytest.mark.usefixtures("empty_cwd")
def test_r7_cli_audit_verify(walked: Core, database_url: str) -> None:
    total = row_count(walked.engine)
    intact = run_audit_verify(database_url, TEST_KEY)
    assert intact.exit_code == 0, intact.output
    assert intact.output.startswith(f"OK: {total} entries verified; head {total} ")

    seq = middle(walked.engine)
    with tampering(walked.engine) as connection:
        set_entry(connection, seq, {"actor": "U0EVIL"})
    broken = run_audit_verify(database_url, TEST_KEY)
    assert broken.exit_code == 1, broken.output
    assert f"BROKEN at entry {seq}:" in broken.stderr
    assert f"({seq - 1} entries verified before it)" in broken.stderr
    assert not broken.output.startswith("OK")


def test_o32_entries_appended_together_chain_and_tree_like_entries_appended_one_by_one(
        walked: Core) -> None:
    """An interaction's entries are appended in one batch: each still chains to the one before
    it exactly as a lone append would, and the stored Merkle tree covers every one of them."""
    engine = walked.engine
    new = [record.NewEntry(at=START + timedelta(seconds=n, microseconds=1234), actor=OFFICER,
                           kind="read", action="case.viewed", case_id=None if n % 2 else "RN-1",
                           payload={"n": n}) for n in range(5)]
    with Session(engine) as session:
        head = session.exec(select(RecordEntry).order_by(col(RecordEntry.seq).desc())).first()
        assert head is not None
    expected, prev = [], head.hash
    for offset, item in enumerate(new, start=1):
        at = item.at.replace(microsecond=1000)
        prev = record.entry_hash(prev_hash=prev, seq=head.seq + offset, at=at, actor=OFFICER,
                                 kind="read", action="case.viewed", case_id=item.case_id,
                                 payload_digest=record.sha256_hex(
                                     record.canonical_json(item.payload)))
        expected.append(prev)
    with transaction(engine) as session:
        appended = record.append_many(session, new, vault=Vault((TEST_KEY,)))
    assert [entry.hash for entry in appended] == expected
    result = verify(engine)
    assert result.ok and result.head_seq == head.seq + 5
    with Session(engine) as session:
        assert tree.root(session, result.head_seq) == result.root


@postgres_only
def test_r7_postgres_append_holds_the_chain_lock_for_two_round_trips(walked: Core) -> None:
    """Every writer waits on the chain's lock, so on PostgreSQL an append makes two round trips
    while holding it: the lock with the chain's head, then one statement for the entries, their
    payloads and the tree's nodes (however many entries)."""
    engine = walked.engine
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    new = [record.NewEntry(at=START, actor=OFFICER, kind="read", action="case.viewed",
                           payload={"n": n}) for n in range(3)]
    with transaction(engine) as session:
        session.connection()  # the transaction's start is not the append's business
        event.listen(engine, "before_cursor_execute", seen)
        try:
            record.append_many(session, new)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        with engine.connect() as other:  # the lock is held until this transaction ends
            held = other.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objid = :low"), {"low": CHAIN_LOCK_KEY & 0xFFFFFFFF}).scalar_one()
        assert held == 1
    assert len(statements) == 2
    assert "pg_advisory_xact_lock" in statements[0] and "ORDER BY seq DESC" in statements[0]
    assert "unnest" in statements[1]
    assert verify(engine).ok


def test_r7_appended_entries_are_kept_for_their_own_transaction_only(walked: Core) -> None:
    """`appended` hands over what the open transaction appended; a session that commits many
    times with no one taking them keeps only the newest transaction's entries."""
    new = [record.NewEntry(at=START, actor=OFFICER, kind="read", action="case.viewed")]
    with Session(walked.engine) as session:
        for _ in range(3):
            with session.begin():
                first = record.append_many(session, new)
        with session.begin():
            second = record.append_many(session, new * 2)
            assert [entry.seq for entry in record.appended(session)] == [e.seq for e in second]
            assert record.appended(session) == []
    assert first[0].seq < second[0].seq
