"""Published heads: the chain's head kept outside the database detects a truncated tail and a
rewritten chain, which the chain alone cannot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session, col, select

from bot.clock import ManualClock
from bot.core.service import Core
from bot.records.heads import (
    HEADS_ACTOR,
    AgainstResult,
    HeadRecord,
    HeadsError,
    publish_head,
    verify_against,
)
from config.settings import Settings
from storage import record
from storage.models import RecordEntry
from storage.vault import Vault
from tests.conftest import TEST_KEY
from tests.helpers import open_case, to_approval

# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def walked(core: Core) -> Core:
    case_id = open_case(core)
    to_approval(core, case_id)
    return core


@pytest.fixture
def heads(tmp_path: Path) -> Path:
    return tmp_path / "published" / "heads.jsonl"


@contextmanager
def tampering(engine: Engine) -> Iterator[Connection]:
    """Raw SQL behind the application's back (PostgreSQL's append-only triggers off for this
    transaction only), as in tests/storage/test_record.py."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            connection.execute(text("PRAGMA defer_foreign_keys = ON"))
        yield connection


def chain(engine: Engine) -> record.VerifyResult:
    with Session(engine) as session:
        return record.verify(session, Vault((TEST_KEY,)))


def entries(engine: Engine) -> list[RecordEntry]:
    with Session(engine) as session:
        return list(session.exec(select(RecordEntry).order_by(col(RecordEntry.seq))))


def publish(engine: Engine, settings: Settings, clock: ManualClock, target: Path) -> HeadRecord:
    return publish_head(engine=engine, settings=settings, clock=clock, target=target)


def against(engine: Engine, settings: Settings, heads_file: Path) -> AgainstResult:
    return verify_against(engine=engine, settings=settings, heads_file=heads_file)


def rewrite_from(engine: Engine, seq: int) -> None:
    """Alter entry `seq` and recompute every hash from it on: a chain that verifies again."""
    rows = [e for e in entries(engine) if e.seq >= seq]
    with tampering(engine) as connection:
        prev_hash = connection.execute(text("SELECT prev_hash FROM record_entry WHERE seq = :s"),
                                       {"s": seq}).scalar_one()
        for entry in rows:
            actor = "U0EVIL" if entry.seq == seq else entry.actor
            digest = record.entry_hash(
                prev_hash=prev_hash, seq=entry.seq, at=entry.at, actor=actor, kind=entry.kind,
                action=entry.action, case_id=entry.case_id, payload_digest=entry.payload_digest)
            connection.execute(
                text("UPDATE record_entry SET actor = :actor, prev_hash = :prev, hash = :hash "
                     "WHERE seq = :seq"),
                {"actor": actor, "prev": prev_hash, "hash": digest, "seq": entry.seq})
            prev_hash = digest


# --- publishing ------------------------------------------------------------------------------


def test_publish_appends_the_verified_head_and_records_it(
        walked: Core, engine: Engine, settings: Settings, clock: ManualClock,
        vault: Vault, heads: Path) -> None:
    heads.parent.mkdir()
    before = chain(engine)
    assert before.ok and before.entries > 10

    first = publish(engine, settings, clock, heads)
    assert (first.seq, first.hash, first.target) == (before.head_seq, before.head_hash, heads)
    assert first.published_at == clock.now()
    lines = heads.read_text("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"published_at": clock.now().isoformat(), "seq": before.head_seq,
         "hash": before.head_hash}]
    assert list(json.loads(lines[0])) == ["published_at", "seq", "hash"]

    log = entries(engine)[-1]
    assert log.seq == first.seq + 1  # the publication comes after the head it published
    assert (log.kind, log.action, log.actor) == ("admin", "records.head_published", HEADS_ACTOR)
    with Session(engine) as session:
        assert record.payload_of(session, log.seq, vault) == {
            "seq": first.seq, "hash": first.hash, "target": str(heads)}

    clock.advance(timedelta(days=1))
    second = publish(engine, settings, clock, heads)
    assert second.seq == log.seq
    assert len(heads.read_text("utf-8").splitlines()) == 2
    assert against(engine, settings, heads) == AgainstResult(ok=True, checked=2)


def test_publish_creates_the_file_and_keeps_earlier_lines_intact(
        walked: Core, engine: Engine, settings: Settings, clock: ManualClock,
        tmp_path: Path) -> None:
    target = tmp_path / "heads.jsonl"
    target.write_text('{"published_at": "2026-01-01T00:00:00+00:00", "seq": 1', "utf-8")
    published = publish(engine, settings, clock, target)
    lines = target.read_text("utf-8").splitlines()
    assert len(lines) == 2  # the interrupted line stays apart from the new one
    assert json.loads(lines[1])["seq"] == published.seq
    result = against(engine, settings, target)
    assert not result.ok and result.problem == "line 1 of the heads file is not JSON"


def test_publish_refuses_a_broken_chain(walked: Core, engine: Engine, settings: Settings,
                                        clock: ManualClock, heads: Path) -> None:
    seq = entries(engine)[4].seq
    with tampering(engine) as connection:
        connection.execute(text("UPDATE record_entry SET actor = 'U0EVIL' WHERE seq = :seq"),
                           {"seq": seq})
    total = len(entries(engine))
    with pytest.raises(HeadsError, match=f"entry {seq}"):
        publish(engine, settings, clock, heads)
    assert not heads.exists()
    assert len(entries(engine)) == total


def test_publish_refuses_an_empty_record(bare_core: Core, engine: Engine, settings: Settings,
                                         clock: ManualClock, heads: Path) -> None:
    with pytest.raises(HeadsError, match="empty"):
        publish(engine, settings, clock, heads)
    assert not heads.exists()


# --- checking against published heads --------------------------------------------------------


def test_truncated_tail_is_detected(walked: Core, engine: Engine, settings: Settings,
                                    clock: ManualClock, tmp_path: Path) -> None:
    heads = tmp_path / "heads.jsonl"
    published = publish(engine, settings, clock, heads)
    assert against(engine, settings, heads).ok

    with tampering(engine) as connection:  # cut the tail off at the published head
        for table in ("record_payload", "record_entry"):
            connection.execute(text(f"DELETE FROM {table} WHERE seq >= :seq"),
                               {"seq": published.seq})
    assert chain(engine).ok  # the chain alone cannot tell
    result = against(engine, settings, heads)
    assert not result.ok and result.checked == 0
    assert result.problem is not None
    assert result.problem.startswith(
        f"entry {published.seq} published at {published.published_at.isoformat()} is missing "
        "(truncated?)")


def test_removed_entry_after_the_head_is_missed_only_by_later_heads(
        walked: Core, engine: Engine, settings: Settings, clock: ManualClock,
        tmp_path: Path) -> None:
    heads = tmp_path / "heads.jsonl"
    first = publish(engine, settings, clock, heads)
    second = publish(engine, settings, clock, heads)
    assert second.seq == first.seq + 1
    last = entries(engine)[-1].seq  # the second publication's own entry
    with tampering(engine) as connection:
        connection.execute(text("DELETE FROM record_payload WHERE seq = :seq"), {"seq": last})
        connection.execute(text("DELETE FROM record_entry WHERE seq = :seq"), {"seq": last})
    assert against(engine, settings, heads) == AgainstResult(ok=True, checked=2)
    with tampering(engine) as connection:
        connection.execute(text("DELETE FROM record_payload WHERE seq = :seq"),
                           {"seq": second.seq})
        connection.execute(text("DELETE FROM record_entry WHERE seq = :seq"),
                           {"seq": second.seq})
    result = against(engine, settings, heads)
    assert not result.ok and result.checked == 1
    assert f"entry {second.seq} published at" in (result.problem or "")
    assert "line 2" in (result.problem or "")


def test_altered_hash_is_detected(walked: Core, engine: Engine, settings: Settings,
                                  clock: ManualClock, tmp_path: Path) -> None:
    heads = tmp_path / "heads.jsonl"
    published = publish(engine, settings, clock, heads)
    with tampering(engine) as connection:
        connection.execute(text("UPDATE record_entry SET hash = :hash WHERE seq = :seq"),
                           {"hash": "f" * 64, "seq": published.seq})
    result = against(engine, settings, heads)
    assert not result.ok
    assert result.problem is not None
    assert result.problem.startswith(
        f"the record does not verify: entry {published.seq}: hash does not match")


def test_rewritten_chain_is_detected(walked: Core, engine: Engine, settings: Settings,
                                     clock: ManualClock, tmp_path: Path) -> None:
    heads = tmp_path / "heads.jsonl"
    published = publish(engine, settings, clock, heads)
    rewrite_from(engine, published.seq - 3)
    assert chain(engine).ok  # consistently rewritten: the chain alone cannot tell
    result = against(engine, settings, heads)
    assert not result.ok and result.checked == 0
    assert result.problem == (
        f"entry {published.seq} differs from the head published at "
        f"{published.published_at.isoformat()} (heads file line 1)")


@pytest.mark.parametrize(("line", "problem"), [
    pytest.param("garbage", "line 2 of the heads file is not JSON", id="not-json"),
    pytest.param("[1, 2]", "line 2 of the heads file is not a JSON object", id="not-object"),
    pytest.param('{"published_at": "x", "seq": true, "hash": "' + "a" * 64 + '"}',
                 "line 2 of the heads file has no valid seq", id="bool-seq"),
    pytest.param('{"published_at": "x", "seq": 0, "hash": "' + "a" * 64 + '"}',
                 "line 2 of the heads file has no valid seq", id="zero-seq"),
    pytest.param('{"published_at": "x", "seq": 1, "hash": "ABC"}',
                 "line 2 of the heads file has no valid hash", id="bad-hash"),
    pytest.param('{"seq": 1, "hash": "' + "a" * 64 + '"}',
                 "line 2 of the heads file has no published_at", id="no-time"),
])
def test_malformed_lines_are_named(walked: Core, engine: Engine, settings: Settings,
                                   clock: ManualClock, tmp_path: Path, line: str,
                                   problem: str) -> None:
    heads = tmp_path / "heads.jsonl"
    publish(engine, settings, clock, heads)
    with heads.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n\n")
    result = against(engine, settings, heads)
    assert not result.ok
    assert (result.problem or "").startswith(problem)


def test_missing_heads_file_and_empty_file(walked: Core, engine: Engine, settings: Settings,
                                           tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.jsonl"
    result = against(engine, settings, missing)
    assert not result.ok and result.problem == f"{missing} does not exist"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", "utf-8")
    assert against(engine, settings, empty) == AgainstResult(ok=True, checked=0)
