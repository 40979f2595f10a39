"""Records export (§6): a folder of entries, metadata, verification and a SHA-256 manifest; the
export is scoped, optionally redacted, atomic, streamed and itself on record."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.clock import ManualClock
from bot.core.service import Core
from bot.messages import ActionId
from bot.records import export as export_module
from bot.records.export import (
    DATA_FILES,
    ENTRY_COLUMNS,
    MANIFEST,
    METADATA_COLUMNS,
    REDACTED,
    ExportError,
    ExportReport,
    export_records,
    verify_export,
)
from config.settings import Settings
from storage import record
from storage.db import transaction
from storage.models import RecordEntry
from storage.vault import Vault
from tests.conftest import START
from tests.helpers import OFFICER, SUBJECT, open_case, press, to_approval
from tests.storage.test_record import dispose_of

ACTOR = "cli:records-tester"
DAY_ONE = START.date()
DAY_THREE = DAY_ONE + timedelta(days=2)


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def walked(core: Core, clock: ManualClock) -> dict[str, str]:
    """Case A opened, checked, sent for approval and shown (privately, with its details) on day
    one; case B opened on day three."""
    first = open_case(core)
    to_approval(core, first)
    assert press(core, OFFICER, first, ActionId.request_approval).ok
    assert press(core, OFFICER, first, ActionId.show_case).ok
    clock.advance(timedelta(days=2))
    second = open_case(core, subject_name="Olga Othercase", notice_reference="B-1/2-2025")
    return {"a": first, "b": second}


def run(engine: Engine, settings: Settings, clock: ManualClock, out_dir: Path,
        **options: Any) -> ExportReport:
    return export_records(engine=engine, settings=settings, clock=clock, actor=ACTOR,
                          out_dir=out_dir, **options)


def db_entries(engine: Engine) -> list[RecordEntry]:
    with Session(engine) as session:
        return list(session.exec(select(RecordEntry).order_by(col(RecordEntry.seq))))


def jsonl(out_dir: Path) -> list[dict[str, Any]]:
    lines = (out_dir / "entries.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines]


def csv_rows(out_dir: Path, name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (out_dir / name).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def all_text(out_dir: Path) -> str:
    return "\n".join(path.read_text("utf-8") for path in sorted(out_dir.iterdir()))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def exported_log(engine: Engine) -> list[RecordEntry]:
    return [e for e in db_entries(engine) if e.action == "records.exported"]


# --- content ---------------------------------------------------------------------------------


def test_entries_match_the_database(walked: dict[str, str], engine: Engine, settings: Settings,
                                    clock: ManualClock, vault: Vault, tmp_path: Path) -> None:
    before = db_entries(engine)
    out = tmp_path / "export"
    report = run(engine, settings, clock, out)

    assert sorted(path.name for path in out.iterdir()) == sorted((*DATA_FILES, MANIFEST))
    rows = jsonl(out)
    assert report.entries == len(rows) == len(before)
    with Session(engine) as session:
        for row, entry in zip(rows, before, strict=True):
            assert list(row) == sorted(ENTRY_COLUMNS)
            assert (row["seq"], row["hash"], row["prev_hash"]) == (
                entry.seq, entry.hash, entry.prev_hash)
            assert (row["actor"], row["kind"], row["action"], row["case_id"]) == (
                entry.actor, entry.kind, entry.action, entry.case_id)
            assert row["at"] == entry.at.isoformat()
            assert row["payload_digest"] == entry.payload_digest
            assert row["payload"] == record.payload_of(session, entry.seq, vault)
    # Unredacted, the exported payloads still match the digests in the chain.
    assert all(record.sha256_hex(record.canonical_json(row["payload"])) == row["payload_digest"]
               for row in rows)

    verification = json.loads((out / "verification.json").read_text("utf-8"))
    assert verification["ok"] is True and verification["problem"] is None
    assert verification["entries"] == verification["head_seq"] == len(before)
    assert verification["head_hash"] == before[-1].hash
    assert verification["scope"] == {"case_id": None, "since": None, "until": None,
                                     "redact": False}
    assert verification["exported_entries"] == len(before)
    assert report.verification.ok and report.verified
    assert report.verification.head_seq == len(before)


def test_csv_files_have_the_same_rows(walked: dict[str, str], engine: Engine,
                                      settings: Settings, clock: ManualClock,
                                      tmp_path: Path) -> None:
    out = tmp_path / "export"
    run(engine, settings, clock, out)
    rows = jsonl(out)

    header, entries = csv_rows(out, "entries.csv")
    assert header == list(ENTRY_COLUMNS)
    assert len(entries) == len(rows)
    for line, row in zip(entries, rows, strict=True):
        assert int(line["seq"]) == row["seq"]
        assert json.loads(line["payload"]) == row["payload"]
        assert (line["case_id"] or None) == row["case_id"]
        for name in ("at", "actor", "kind", "action", "payload_digest", "prev_hash", "hash"):
            assert line[name] == row[name]

    header, metadata = csv_rows(out, "metadata.csv")
    assert header == list(METADATA_COLUMNS)
    assert len(metadata) == len(rows)
    for line, row in zip(metadata, rows, strict=True):
        assert int(line["seq"]) == row["seq"]
        assert line["record_type"] == ("case_file" if row["case_id"] else "interaction")
        assert (line["case_id"] or None) == row["case_id"]
        assert line["created"] == row["at"]
        assert line["disposed"] == "false"
        assert line["sha256"] == row["payload_digest"]
    assert {line["record_type"] for line in metadata} == {"case_file", "interaction"}


def test_disposed_entry_is_exported_without_content(walked: dict[str, str], engine: Engine,
                                                    settings: Settings, clock: ManualClock,
                                                    tmp_path: Path) -> None:
    seq = db_entries(engine)[5].seq
    with engine.begin() as connection:  # disposition deletes the payload row, keeps the entry
        dispose_of(connection, seq)
    out = tmp_path / "export"
    report = run(engine, settings, clock, out)
    assert report.verification.ok

    row = next(r for r in jsonl(out) if r["seq"] == seq)
    assert row["payload"] is None
    line = next(r for r in csv_rows(out, "entries.csv")[1] if int(r["seq"]) == seq)
    assert line["payload"] == ""
    meta = next(r for r in csv_rows(out, "metadata.csv")[1] if int(r["seq"]) == seq)
    assert meta["disposed"] == "true"
    assert meta["sha256"] == row["payload_digest"]
    assert sum(r["disposed"] == "true" for r in csv_rows(out, "metadata.csv")[1]) == 1


# --- manifest --------------------------------------------------------------------------------


def test_manifest_verifies_and_detects_tampering(walked: dict[str, str], engine: Engine,
                                                 settings: Settings, clock: ManualClock,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "export"
    report = run(engine, settings, clock, out)
    assert verify_export(out) == []

    manifest = (out / MANIFEST).read_text("utf-8").splitlines()
    assert sorted(manifest) == sorted(f"{sha256_of(out / name)}  {name}" for name in DATA_FILES)
    assert report.files == {name: sha256_of(out / name) for name in DATA_FILES}
    assert report.manifest_sha256 == sha256_of(out / MANIFEST)

    original = (out / "entries.csv").read_bytes()
    (out / "entries.csv").write_bytes(original.replace(b"U0OFF1", b"U0EVIL", 1))
    assert verify_export(out) == [
        f"entries.csv does not match its SHA-256 in {MANIFEST} (altered)"]
    (out / "entries.csv").write_bytes(original)
    assert verify_export(out) == []

    (out / "extra.txt").write_text("added later", "utf-8")
    assert verify_export(out) == [f"extra.txt is not in {MANIFEST} (added)"]
    (out / "extra.txt").unlink()

    (out / "metadata.csv").unlink()
    assert verify_export(out) == ["metadata.csv is missing"]

    (out / MANIFEST).write_text("not a manifest line\n", "utf-8")
    problems = verify_export(out)
    assert problems[0].startswith(f"{MANIFEST} line 1 is not")
    (out / MANIFEST).unlink()
    assert verify_export(out) == [f"{MANIFEST} is missing"]


# --- scope -----------------------------------------------------------------------------------


def test_case_scope(walked: dict[str, str], engine: Engine, settings: Settings,
                    clock: ManualClock, tmp_path: Path) -> None:
    case_a = walked["a"]
    expected = [e.seq for e in db_entries(engine) if e.case_id == case_a]
    assert expected
    out = tmp_path / "case"
    report = run(engine, settings, clock, out, case_id=case_a)
    rows = jsonl(out)
    assert [row["seq"] for row in rows] == expected
    assert {row["case_id"] for row in rows} == {case_a}
    assert report.entries == len(expected)
    assert json.loads((out / "verification.json").read_text("utf-8"))["scope"]["case_id"] == \
        case_a
    # The export is on the case's own record.
    log = exported_log(engine)[-1]
    assert log.case_id == case_a


def test_date_scope(walked: dict[str, str], engine: Engine, settings: Settings,
                    clock: ManualClock, tmp_path: Path) -> None:
    entries = db_entries(engine)
    later = [e.seq for e in entries if e.at.date() >= DAY_THREE]
    first_day = [e.seq for e in entries if e.at.date() <= DAY_ONE]
    assert later and first_day and len(later) + len(first_day) == len(entries)

    run(engine, settings, clock, tmp_path / "since", since=DAY_THREE)
    assert [row["seq"] for row in jsonl(tmp_path / "since")] == later
    run(engine, settings, clock, tmp_path / "until", until=DAY_ONE)
    assert [row["seq"] for row in jsonl(tmp_path / "until")] == first_day
    run(engine, settings, clock, tmp_path / "between", since=DAY_ONE + timedelta(days=1),
        until=DAY_THREE - timedelta(days=1))
    assert jsonl(tmp_path / "between") == []
    both = run(engine, settings, clock, tmp_path / "both", case_id=walked["b"],
               since=DAY_THREE, until=DAY_THREE)
    assert both.entries > 0
    assert all(row["case_id"] == walked["b"] for row in jsonl(tmp_path / "both"))

    with pytest.raises(ExportError, match="before"):
        run(engine, settings, clock, tmp_path / "backwards", since=DAY_THREE, until=DAY_ONE)


def test_date_scope_days_are_inclusive_utc(bare_core: Core, engine: Engine, settings: Settings,
                                           clock: ManualClock, vault: Vault,
                                           tmp_path: Path) -> None:
    day = date(2027, 3, 1)
    moments = {
        "last of the day before": datetime(2027, 2, 28, 23, 59, 59, 999000, tzinfo=UTC),
        "first of the day": datetime(2027, 3, 1, 0, 0, tzinfo=UTC),
        "last of the day": datetime(2027, 3, 1, 23, 59, 59, 999000, tzinfo=UTC),
        "first of the day after": datetime(2027, 3, 2, 0, 0, tzinfo=UTC),
    }
    for label, moment in moments.items():
        with transaction(engine) as session:
            record.append(session, at=moment, actor="t", kind="state", action=label,
                          vault=vault)
    run(engine, settings, clock, tmp_path / "day", since=day, until=day)
    assert [row["action"] for row in jsonl(tmp_path / "day")] == [
        "first of the day", "last of the day"]


# --- redaction -------------------------------------------------------------------------------


def subject_values() -> list[str]:
    values = list(SUBJECT.values())
    values += [part.strip() for part in SUBJECT["subject_identifiers"].split(",")]
    return values


def test_redacted_export_has_no_subject_detail(walked: dict[str, str], engine: Engine,
                                               settings: Settings, clock: ManualClock,
                                               tmp_path: Path) -> None:
    full = run(engine, settings, clock, tmp_path / "full")
    plain = all_text(tmp_path / "full")
    assert all(value in plain for value in subject_values())
    assert "Olga Othercase" in plain

    shared = run(engine, settings, clock, tmp_path / "shared", redact=True)
    assert shared.redacted and not full.redacted
    redacted = all_text(tmp_path / "shared")
    leaked = [value for value in subject_values() if value in redacted]
    assert leaked == []
    assert "Olga Othercase" not in redacted
    assert verify_export(tmp_path / "shared") == []

    rows = jsonl(tmp_path / "shared")
    opened = next(r for r in rows if r["action"] == "form.open_case")
    values = opened["payload"]["values"]
    assert {name: values[name] for name in SUBJECT} == dict.fromkeys(SUBJECT, REDACTED)
    assert values["notice_type"] == "red_notice"  # what is not a detail stays
    shown = next(r for r in rows if r["action"] == "message.private"
                 and r["payload"]["message"]["title"].endswith("(private)"))
    assert shown["payload"]["message"]["text"] == REDACTED
    assert dict(shown["payload"]["message"]["fields"])["Subject"] == REDACTED
    # The chain columns are those of the original content, so the export stays checkable.
    by_seq = {e.seq: e for e in db_entries(engine)}
    assert all(r["hash"] == by_seq[r["seq"]].hash for r in rows)
    log = exported_log(engine)[-1]
    with Session(engine) as session:
        payload = record.payload_of(session, log.seq, Vault(settings.vault_keys))
    assert payload is not None and payload["scope"]["redact"] is True


# --- refusal, atomicity, the export's own record, progress -----------------------------------


def test_refuses_a_non_empty_destination(walked: dict[str, str], engine: Engine,
                                         settings: Settings, clock: ManualClock,
                                         tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    taken = exports / "taken"
    taken.mkdir(parents=True)
    (taken / "keep.txt").write_text("mine", "utf-8")
    before = len(db_entries(engine))
    with pytest.raises(ExportError, match="not empty"):
        run(engine, settings, clock, taken)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]

    a_file = exports / "file.jsonl"
    a_file.write_text("", "utf-8")
    with pytest.raises(ExportError, match="not a folder"):
        run(engine, settings, clock, a_file)
    assert sorted(p.name for p in exports.iterdir()) == ["file.jsonl", "taken"]
    assert len(db_entries(engine)) == before  # nothing recorded

    empty = exports / "empty"
    empty.mkdir()
    report = run(engine, settings, clock, empty)
    assert report.entries == before and verify_export(empty) == []


def test_failed_export_leaves_nothing(walked: dict[str, str], engine: Engine,
                                      settings: Settings, clock: ManualClock, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_module, "PROGRESS_EVERY", 5)
    exports = tmp_path / "exports"
    exports.mkdir()
    before = len(db_entries(engine))

    def interrupted(done: int, total: int) -> None:
        if done >= 10:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        run(engine, settings, clock, exports / "out", progress=interrupted)
    assert list(exports.iterdir()) == []  # neither the folder nor its partial sibling
    assert len(db_entries(engine)) == before
    assert exported_log(engine) == []


def test_export_is_recorded_in_the_chain(walked: dict[str, str], engine: Engine,
                                         settings: Settings, clock: ManualClock, vault: Vault,
                                         tmp_path: Path) -> None:
    before = db_entries(engine)
    out = tmp_path / "export"
    report = run(engine, settings, clock, out, case_id=walked["a"], since=DAY_ONE)

    after = db_entries(engine)
    assert len(after) == len(before) + 1
    log = after[-1]
    assert (log.kind, log.action, log.actor, log.case_id) == (
        "admin", "records.exported", ACTOR, walked["a"])
    assert report.log_seq == log.seq
    with Session(engine) as session:
        payload = record.payload_of(session, log.seq, vault)
        assert record.verify(session, vault).ok
    assert payload is not None
    assert payload["manifest_sha256"] == sha256_of(out / MANIFEST) == report.manifest_sha256
    assert payload["files"] == report.files
    assert payload["entries"] == report.entries
    assert payload["scope"] == {"case_id": walked["a"], "since": DAY_ONE.isoformat(),
                                "until": None, "redact": False}
    assert payload["head_seq"] == len(before) and payload["chain_ok"] is True
    # The log entry comes after the export: it is not in the files it describes.
    assert log.seq not in [row["seq"] for row in jsonl(out)]


def test_progress_is_reported(walked: dict[str, str], engine: Engine, settings: Settings,
                              clock: ManualClock, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_module, "PROGRESS_EVERY", 7)
    calls: list[tuple[int, int]] = []
    report = run(engine, settings, clock, tmp_path / "export",
                 progress=lambda done, total: calls.append((done, total)))
    total = report.entries
    assert total > 14
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(set(done))
    assert len(calls) == 2 + total // 7 - (1 if total % 7 == 0 else 0)
