"""Retention schedule, litigation holds and disposition (§6, R8), and protection at rest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import Session, select

from bot.app import build_core
from bot.clock import ManualClock
from bot.core.context import Ctx
from bot.core.errors import Refused
from bot.core.service import Core
from bot.messages import ActionId, Outcome
from bot.records.disposition import dispose, eligible
from bot.records.holds import lift_hold, place_hold
from bot.records.retention import RecordType, ScheduleError, load_schedule
from config.settings import Settings
from handlers.cli import main
from storage import record
from storage.models import Case, DispositionLog, RecordEntry, RecordPayload
from storage.vault import Vault
from tests.conftest import OLD_KEY, TEST_KEY
from tests.helpers import OFFICER, RECORDS, SUBJECT, open_case, press

SCHEDULE = """
[[schedule]]
record_type = "case_file"
item = "ICE-1015-CASE"
authority = "DAA-0567-2023-0001"
retain_years = 10
trigger = "case_closed"

[[schedule]]
record_type = "interaction"
item = "GRS-5.2-020"
authority = "DAA-GRS-2022-0009-0002"
retain_years = 3
"""


@pytest.fixture
def schedule_file(tmp_path: Path) -> Path:
    path = tmp_path / "retention.toml"
    path.write_text(SCHEDULE, encoding="utf-8")
    return path


@pytest.fixture
def records_core(core: Core, schedule_file: Path) -> Core:
    core.settings = core.settings.model_copy(update={"retention_file": str(schedule_file)})
    return core


def closed_case(core: Core) -> str:
    case_id = open_case(core)
    assert press(core, OFFICER, case_id, ActionId.withdraw, {"reason": "test"}).ok
    return case_id


def as_records(core: Core, handler: object, actor: str = RECORDS) -> Outcome:
    def run(ctx: Ctx) -> Outcome:
        handler(ctx)  # type: ignore[operator]
        return Outcome()
    return core.act(actor=actor, action="test.records", handler=run)


def verify(core: Core) -> record.VerifyResult:
    with Session(core.engine) as session:
        return record.verify(session, Vault(core.settings.vault_keys))


def test_schedule_file_is_validated(tmp_path: Path) -> None:
    assert load_schedule("").items == {}
    bad = tmp_path / "bad.toml"
    for content, message in (
        ('[[schedule]]\nrecord_type="case_file"\nitem="x"\nauthority="y"\n'
         'retain_years=1\nretain_days=2\ntrigger="case_closed"', "exactly one"),
        ('[[schedule]]\nrecord_type="case_file"\nitem="x"\nauthority="y"\nretain_years=1',
         "must be 'case_closed'"),
        ('[[schedule]]\nrecord_type="email"\nitem="x"\nauthority="y"\nretain_years=1',
         "record_type"),
        (SCHEDULE + SCHEDULE, "scheduled twice"),
    ):
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(ScheduleError, match=message):
            load_schedule(str(bad))
    with pytest.raises(ScheduleError, match="does not exist"):
        load_schedule(str(tmp_path / "missing.toml"))


def test_o32_r8_hold_survives_eligible_is_disposed_with_tombstone_and_log(
    records_core: Core, clock: ManualClock
) -> None:
    core = records_core
    held, disposable = closed_case(core), closed_case(core)
    schedule = load_schedule(core.settings.retention_file)
    assert as_records(core, lambda ctx: place_hold(
        ctx, matter="Doe v. DHS", authority="AUSA Smith", reason="pending suit",
        case_id=held)).ok
    clock.advance(timedelta(days=365 * 10 + 3))
    listed: list[str] = []
    as_records(core, lambda ctx: listed.extend(e.record_ref for e in eligible(ctx, schedule)))
    assert disposable in listed and held not in listed
    # Asked by name, the held case is refused and nothing at all is disposed of (R8).
    refused = as_records(core, lambda ctx: dispose(ctx, schedule, [held, disposable]))
    assert not refused.ok and held in (refused.refusal or "")
    assert as_records(core, lambda ctx: dispose(ctx, schedule, [disposable])).ok
    with Session(core.engine) as session:
        gone = session.get(Case, disposable)
        kept = session.get(Case, held)
        assert gone is not None and gone.disposed_at is not None
        assert gone.subject_name == "[disposed]"
        assert kept is not None and kept.disposed_at is None
        entries = session.exec(select(RecordEntry).where(RecordEntry.case_id == disposable)).all()
        assert entries  # tombstones stay in the chain
        content = [e.action for e in entries if session.get(RecordPayload, e.seq) is not None]
        assert content == ["records.disposed"]  # only the disposition's own entry has content
        log = session.exec(select(DispositionLog)).one()
    assert (log.record_ref, log.schedule_item, log.authority, log.approved_by) == (
        disposable, "ICE-1015-CASE", "DAA-0567-2023-0001", RECORDS)
    assert log.eligible_on <= log.disposed_on and log.entries_affected > 5
    assert verify(core).ok
    # Once the hold is lifted the other case can go too.
    hold_id = 1
    assert as_records(core, lambda ctx: lift_hold(ctx, hold_id, reason="settled")).ok
    assert as_records(core, lambda ctx: dispose(ctx, schedule, [held])).ok


def test_r8_unscheduled_and_not_yet_eligible_records_survive(
    core: Core, records_core: Core, clock: ManualClock, tmp_path: Path
) -> None:
    case_id = closed_case(records_core)
    schedule = load_schedule(records_core.settings.retention_file)
    clock.advance(timedelta(days=365 * 5))
    early = as_records(records_core, lambda ctx: dispose(ctx, schedule, [case_id]))
    assert not early.ok and "not yet due" in (early.refusal or "")
    clock.advance(timedelta(days=365 * 6))
    unscheduled = load_schedule("")
    found: list[object] = []
    as_records(records_core, lambda ctx: found.extend(eligible(ctx, unscheduled)))
    assert found == []
    assert not as_records(records_core, lambda ctx: dispose(ctx, unscheduled, [case_id])).ok
    with Session(records_core.engine) as session:
        assert session.get(Case, case_id).disposed_at is None  # type: ignore[union-attr]


def test_r4_only_records_officers_hold_and_dispose(records_core: Core) -> None:
    case_id = closed_case(records_core)
    schedule = load_schedule(records_core.settings.retention_file)
    for actor in (OFFICER, "U0SUP1", "U0MGR1"):
        assert not as_records(records_core, lambda ctx: place_hold(
            ctx, matter="m", authority="a", reason="r", case_id=case_id), actor=actor).ok
        assert not as_records(records_core, lambda ctx: dispose(ctx, schedule),
                              actor=actor).ok


def test_hold_from_chat_command(records_core: Core) -> None:
    case_id = closed_case(records_core)
    placed = records_core.command(actor=RECORDS, text=f"/notice hold {case_id} subpoena 24-113")
    assert placed.ok and "hold 1 placed" in placed.private[0].title.lower()
    assert records_core.command(actor=OFFICER, text=f"/notice hold {case_id} x").refusal


def test_interaction_entries_disposed_by_date_unless_held(
    records_core: Core, clock: ManualClock
) -> None:
    schedule = load_schedule(records_core.settings.retention_file)
    assert records_core.command(actor=OFFICER, text="/notice list").ok
    assert as_records(records_core, lambda ctx: place_hold(
        ctx, matter="audit", authority="OIG", reason="review", person=OFFICER)).ok
    clock.advance(timedelta(days=365 * 3 + 2))
    refs: list[str] = []
    as_records(records_core, lambda ctx: refs.extend(
        e.record_ref for e in eligible(ctx, schedule) if e.record_type is RecordType.interaction))
    with Session(records_core.engine) as session:
        officers = {f"entry:{e.seq}" for e in session.exec(
            select(RecordEntry).where(RecordEntry.actor == OFFICER))}
        roster = {f"entry:{e.seq}" for e in session.exec(
            select(RecordEntry).where(RecordEntry.actor == "test"))}
    assert officers and not officers & set(refs)  # held by the person hold
    assert roster <= set(refs)  # the roster import is past its 3 years
    assert as_records(records_core, lambda ctx: dispose(ctx, schedule, refs)).ok
    with Session(records_core.engine) as session:
        assert all(session.get(RecordPayload, int(r[6:])) is None for r in refs)
    assert verify(records_core).ok


def test_subject_details_not_readable_in_raw_rows_and_rotation_keeps_them(
    settings: Settings, core: Core, clock: ManualClock
) -> None:
    case_id = open_case(core)
    with core.engine.connect() as connection:
        case_row = " ".join(str(v) for v in connection.execute(
            text("SELECT * FROM notice_case")).one())
        bodies = " ".join(r[0] for r in connection.execute(text("SELECT body FROM record_payload")))
    for detail in (SUBJECT["subject_name"], SUBJECT["subject_identifiers"],
                   SUBJECT["offense_summary"], SUBJECT["notes"]):
        assert detail not in case_row and detail not in bodies
    # A new key goes first; the old one still decrypts; rotation re-encrypts everything.
    rotated = settings.model_copy(
        update={"encryption_keys": (SecretStr(OLD_KEY), SecretStr(TEST_KEY))})
    core2 = build_core(rotated, clock=clock, engine=core.engine, migrate=False)
    assert SUBJECT["subject_name"] in core2.command(
        actor=OFFICER, text=f"/notice show {case_id}").private[0].all_text()
    runner = CliRunner()
    env = {"NOTICEBOT_DATABASE_URL": settings.database_url,
           "NOTICEBOT_ENCRYPTION_KEYS": f"{OLD_KEY},{TEST_KEY}"}
    result = runner.invoke(main, ["keys", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    only_new = build_core(settings.model_copy(update={"encryption_keys": (SecretStr(OLD_KEY),)}),
                          clock=clock, engine=core.engine, migrate=False)
    shown = only_new.command(actor=OFFICER, text=f"/notice show {case_id}")
    assert SUBJECT["subject_name"] in shown.private[0].all_text()
    with Session(core.engine) as session:
        assert record.verify(session, Vault((OLD_KEY,))).ok
        assert not record.verify(session, Vault((TEST_KEY,))).ok  # old key no longer opens


def test_records_cli_schedule_hold_and_disposition(
    records_core: Core, database_url: str, schedule_file: Path
) -> None:
    case_id = closed_case(records_core)
    runner = CliRunner(env={"NOTICEBOT_DATABASE_URL": database_url,
                            "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY,
                            "NOTICEBOT_RETENTION_FILE": str(schedule_file)})
    shown = runner.invoke(main, ["records", "schedule", "--as", RECORDS])
    assert shown.exit_code == 0, shown.output
    assert "case_file        ICE-1015-CASE" in shown.output
    assert "training         unscheduled: kept indefinitely" in shown.output
    assert case_id in shown.output
    placed = runner.invoke(main, ["records", "hold", "place", "--as", RECORDS, "--matter", "M",
                                  "--authority", "A", "--reason", "R", "--case", case_id])
    assert placed.exit_code == 0 and "hold 1 placed" in placed.output
    assert "HELD (1)" in runner.invoke(main, ["records", "schedule", "--as", RECORDS]).output
    denied = runner.invoke(main, ["records", "disposition", "--list", "--as", OFFICER])
    assert denied.exit_code == 1 and "records role" in denied.output
    listed = runner.invoke(main, ["records", "disposition", "--list", "--as", RECORDS])
    assert listed.exit_code == 0 and case_id not in listed.output
    refused = runner.invoke(main, ["records", "disposition", "--approve", "--as", RECORDS,
                                   case_id])
    assert refused.exit_code == 1 and "Nothing was disposed of" in refused.output
    lifted = runner.invoke(main, ["records", "hold", "lift", "1", "--as", RECORDS,
                                  "--reason", "done"])
    assert lifted.exit_code == 0


def test_refused_disposition_is_recorded(records_core: Core) -> None:
    schedule = load_schedule(records_core.settings.retention_file)
    outcome = as_records(records_core, lambda ctx: dispose(ctx, schedule, ["RN-2099-0001"]))
    assert not outcome.ok
    with Session(records_core.engine) as session:
        refusals = session.exec(select(RecordEntry).where(RecordEntry.kind == "refusal")).all()
    assert refusals


def test_refused_raises_for_direct_callers(records_core: Core) -> None:
    with pytest.raises(Refused):
        from bot.core.context import unit_of_work

        with unit_of_work(records_core.engine, clock=records_core.clock,
                          settings=records_core.settings, actor=OFFICER) as ctx:
            dispose(ctx, load_schedule(records_core.settings.retention_file))
