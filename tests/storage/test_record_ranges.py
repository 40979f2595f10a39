"""Verification in ranges (R7, P6): a long chain is checked range by range, side by side in
worker processes, and the ranges joined at their boundaries. Whatever the tampering and wherever
it falls against the range boundaries, the answer is the one the plain walk gives."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session, select

from bot.core.service import Core
from bot.messages import ActionId
from storage import record, tree
from storage.db import create_db_engine, upgrade
from storage.models import RecordEntry
from storage.vault import Vault
from tests.conftest import TEST_KEY
from tests.helpers import OFFICER, open_case, press, run_audit_verify, to_approval
from tests.storage.test_record import (
    CONTENT,
    delete_entry,
    dispose_of,
    raw_body,
    raw_entry,
    seqs,
    set_body,
    set_entry,
    tampering,
)

PER_RANGE = 4  # small ranges, so a short chain has many boundaries


@pytest.fixture
def walked(core: Core) -> Core:
    """Two cases walked to approval and a third opened: a chain of several ranges."""
    for _ in range(2):
        case_id = open_case(core)
        to_approval(core, case_id)
        assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    open_case(core)
    return core


def verify(engine: Engine, *, workers: int | None = None,
           per_range: int | None = None) -> record.VerifyResult:
    with Session(engine) as session:
        return record.verify(session, Vault((TEST_KEY,)), workers=workers, per_range=per_range)


def assert_ranges_agree(engine: Engine) -> record.VerifyResult:
    """Every range size gives the plain walk's answer (ranges run in this process)."""
    plain = verify(engine)
    for per_range in (1, 2, 3, PER_RANGE, 7):
        assert verify(engine, workers=1, per_range=per_range) == plain, per_range
    return plain


# --- tamperings, each at a given entry -------------------------------------------------------


def alter_actor(connection: Connection, seq: int) -> None:
    set_entry(connection, seq, {"actor": "U0EVIL"})


def alter_payload(connection: Connection, seq: int) -> None:
    set_body(connection, seq, '{"tampered":true}')


def swap_bodies(connection: Connection, seq: int) -> None:
    """Two valid ciphertexts trade places: only decrypting shows it (Fernet tokens are not
    bound to their entry)."""
    mine, theirs = raw_body(connection, seq), raw_body(connection, seq + 1)
    set_body(connection, seq, theirs)
    set_body(connection, seq + 1, mine)


def forge_own_hash(connection: Connection, seq: int) -> None:
    entry = raw_entry(connection, seq)
    at = entry["at"]
    # SQLite hands back naive UTC text, PostgreSQL an aware datetime.
    at = (datetime.fromisoformat(at).replace(tzinfo=UTC) if isinstance(at, str)
          else at.astimezone(UTC))
    forged = record.entry_hash(
        prev_hash=entry["prev_hash"], seq=seq, at=at, actor="U0EVIL",
        kind=entry["kind"], action=entry["action"], case_id=entry["case_id"],
        payload_digest=entry["payload_digest"])
    set_entry(connection, seq, {"actor": "U0EVIL", "hash": forged})


def delete(connection: Connection, seq: int) -> None:
    delete_entry(connection, seq)


def delete_range(connection: Connection, seq: int) -> None:
    """A whole range's worth of entries: some range has no rows at all."""
    for gone in range(seq, seq + PER_RANGE):
        delete_entry(connection, gone)


def delete_and_renumber(connection: Connection, seq: int) -> None:
    last = int(connection.execute(text("SELECT max(seq) FROM record_entry")).scalar_one())
    delete_entry(connection, seq)
    for old in range(seq + 1, last + 1):
        for table in ("record_payload", "record_entry"):
            connection.execute(text(f"UPDATE {table} SET seq = :new WHERE seq = :old"),
                               {"new": old - 1, "old": old})


def swap_contents(connection: Connection, seq: int) -> None:
    a, b = raw_entry(connection, seq), raw_entry(connection, seq + 1)
    body_a, body_b = raw_body(connection, seq), raw_body(connection, seq + 1)
    set_entry(connection, seq + 1, {name: a[name] for name in CONTENT})
    set_entry(connection, seq, {name: b[name] for name in CONTENT})
    set_body(connection, seq, body_b)
    set_body(connection, seq + 1, body_a)


def truncate_tail(connection: Connection, seq: int) -> None:
    """Not detectable by the chain alone (published heads are for that): still verifies."""
    last = int(connection.execute(text("SELECT max(seq) FROM record_entry")).scalar_one())
    for gone in range(seq, last + 1):
        delete_entry(connection, gone)


def dispose(connection: Connection, seq: int) -> None:
    """Disposition's tombstone: no payload, a log row and its entry; the chain still verifies."""
    dispose_of(connection, seq)


def delete_content(connection: Connection, seq: int) -> None:
    """Content removed behind the disposition path's back (O32): broken at that entry."""
    connection.execute(text("DELETE FROM record_payload WHERE seq = :seq"), {"seq": seq})


TAMPERINGS: dict[str, tuple[Callable[[Connection, int], None], bool]] = {
    # name: (tampering, still verifies)
    "altered-actor": (alter_actor, False),
    "altered-payload": (alter_payload, False),
    "swapped-bodies": (swap_bodies, False),
    "forged-own-hash": (forge_own_hash, False),
    "deleted": (delete, False),
    "deleted-whole-range": (delete_range, False),
    "deleted-and-renumbered": (delete_and_renumber, False),
    "swapped-contents": (swap_contents, False),
    "truncated-tail": (truncate_tail, True),
    "disposed": (dispose, True),
    "content-deleted": (delete_content, False),
}
# Where the tampered entry sits against the ranges of PER_RANGE entries.
POSITIONS: dict[str, Callable[[int], int]] = {
    "first-entry": lambda n: 1, "range-start": lambda n: 2 * PER_RANGE + 1,
    "range-end": lambda n: 3 * PER_RANGE, "inside": lambda n: n // 2 + 2}


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("name", TAMPERINGS)
def test_r7_ranges_find_what_the_walk_finds(walked: Core, name: str, position: str) -> None:
    engine = walked.engine
    intact = assert_ranges_agree(engine)
    assert intact.ok and intact.entries >= 6 * PER_RANGE, intact
    seq = POSITIONS[position](intact.entries)
    tamper, still_verifies = TAMPERINGS[name]
    with tampering(engine) as connection:
        tamper(connection, seq)
    result = assert_ranges_agree(engine)
    assert result.ok is still_verifies, result
    if not still_verifies:
        # The walk (pinned by test_record.py) stops at the entry tampered with, or the next.
        assert result.broken_seq in (seq, seq + 1), result


def test_r7_swapped_bodies_detected_at_the_first(walked: Core) -> None:
    seq = len(seqs(walked.engine)) // 2
    with tampering(walked.engine) as connection:
        swap_bodies(connection, seq)
    result = verify(walked.engine)
    assert not result.ok and result.broken_seq == seq, result
    assert result.problem == "payload does not match its digest (altered)"


def test_r7_head_of_a_truncated_chain_is_its_new_last_entry(walked: Core) -> None:
    before = verify(walked.engine)
    with tampering(walked.engine) as connection:
        truncate_tail(connection, before.entries - 1)
    after = assert_ranges_agree(walked.engine)
    assert after.ok and after.entries == before.entries - 2 == after.head_seq


# --- worker processes ------------------------------------------------------------------------


@pytest.mark.usefixtures("empty_cwd")
def test_r7_cli_audit_verify_with_worker_processes(walked: Core, database_url: str) -> None:
    plain = verify(walked.engine)
    intact = run_audit_verify(database_url, TEST_KEY, "--workers", "2")
    assert intact.exit_code == 0, intact.output
    assert intact.output == (f"OK: {plain.entries} entries verified; head {plain.head_seq} "
                             f"{plain.head_hash}\n")

    seq = plain.entries - 3
    with tampering(walked.engine) as connection:
        swap_bodies(connection, seq)
    broken = run_audit_verify(database_url, TEST_KEY, "--workers", "2")
    assert broken.exit_code == 1, broken.output
    assert f"BROKEN at entry {seq}: payload does not match its digest" in broken.stderr
    assert f"({seq - 1} entries verified before it)" in broken.stderr


def test_r7_worker_processes_agree_with_the_walk(walked: Core) -> None:
    with tampering(walked.engine) as connection:
        alter_actor(connection, 2 * PER_RANGE + 2)
    plain = verify(walked.engine)
    assert not plain.ok
    assert verify(walked.engine, workers=2, per_range=PER_RANGE) == plain


def test_ranges_hash_the_merkle_tree_in_the_same_pass(walked: Core) -> None:
    """`--full` reads each row once: the walk hashes the tree as it goes, ranges of a power of
    two join into the stored tree's root, with the root at each size asked for."""
    with Session(walked.engine) as session:
        size = record.verify(session, Vault((TEST_KEY,))).head_seq
        stored = tree.root(session, size)
        wanted = {1, 5, 8, size - 1, size}
        expected = {seq: (session.exec(select(RecordEntry.hash).where(RecordEntry.seq == seq))
                          .one(), tree.root(session, seq)) for seq in wanted}
    assert size > 3 * PER_RANGE
    for workers, per_range in ((1, None), (1, 1), (1, 2), (1, PER_RANGE), (1, 8), (2, PER_RANGE)):
        with Session(walked.engine) as session:
            result = record.verify(session, Vault((TEST_KEY,)), workers=workers,
                                   per_range=per_range, marks=wanted)
        assert result.ok and result.root == stored, (workers, per_range)
        assert result.marks == expected, (workers, per_range)
    # Ranges off the subtrees' boundaries cannot be joined: no root, the caller hashes apart.
    with Session(walked.engine) as session:
        assert record.verify(session, Vault((TEST_KEY,)), workers=1, per_range=3).root is None


def test_in_memory_database_is_walked_in_process() -> None:
    """Other processes cannot open it: the walk stays in this one, whatever is asked."""
    engine = create_db_engine("sqlite://")
    upgrade(engine)
    with Session(engine) as session, session.begin():
        for n in range(5):
            record.append(session, at=datetime(2026, 11, 23, tzinfo=UTC), actor="U0A",
                          kind="state", action="x", payload={"n": n})
    assert verify(engine, workers=2, per_range=2) == verify(engine)
    assert verify(engine).entries == 5


# --- the pieces ------------------------------------------------------------------------------


def test_vault_crosses_to_a_worker_process_by_its_keys() -> None:
    vault = Vault((TEST_KEY,))
    copy = pickle.loads(pickle.dumps(vault))
    assert copy.open(vault.seal("content")) == "content"
    assert not pickle.loads(pickle.dumps(Vault(()))).enabled


def test_canonical_json_is_unchanged() -> None:
    """Hashes already in the chain depend on this exact text."""
    value = {"b": [1, 2.5, None, True], "a": "Ünïcode ✓", "c": {"z": 1, "y": datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC)}}
    assert record.canonical_json(value) == (
        '{"a":"Ünïcode ✓","b":[1,2.5,null,true],"c":{"y":"2026-01-02 03:04:05+00:00","z":1}}')
    at = datetime(2026, 11, 23, 15, 0, 0, 123000, tzinfo=UTC)
    assert record.entry_hash(prev_hash=record.GENESIS_HASH, seq=1, at=at, actor="U0A",
                             kind="state", action="x", case_id=None,
                             payload_digest="0" * 64) == record.sha256_hex(
        '["' + "0" * 64 + '",1,"2026-11-23T15:00:00.123000+00:00","U0A","state","x",null,"'
        + "0" * 64 + '"]')


def test_r7_entries_renumbered_below_one_are_found(bare_core: Core) -> None:
    engine = bare_core.engine
    before = verify(engine).entries
    with Session(engine) as session, session.begin():
        for n in range(3):
            record.append(session, at=datetime(2026, 11, 23, tzinfo=UTC), actor="U0A",
                          kind="state", action="x", payload={"n": n})
    with tampering(engine) as connection:
        for old in range(1, before + 4):  # every entry moves down below 1
            for table in ("record_payload", "record_entry"):
                connection.execute(text(f"UPDATE {table} SET seq = :new WHERE seq = :old"),
                                   {"new": old - before - 3, "old": old})
    plain = verify(engine)
    assert not plain.ok and plain.broken_seq == 1, plain
    assert plain.problem == f"entry 1 is missing (next entry found is {-before - 2})"
    assert verify(engine, workers=1, per_range=1) == plain
