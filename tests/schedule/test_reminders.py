"""Reminders, escalations and digests with a controlled clock."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, col, select

from bot.calendar import BusinessCalendar
from bot.clock import ManualClock
from bot.core.service import Core
from bot.messages import ActionId, Message
from bot.schedule.digest import sweep_digests
from bot.schedule.runner import sweep_once
from storage.models import Approval, OutboxMessage, UsncbNoResponse
from tests.helpers import (
    DESIGNEE,
    FRO,
    MANAGER,
    OFFICER,
    TODAY,
    entries,
    open_case,
    press,
    to_approval,
    to_documents,
    transactions,
)


def run_until(core: Core, clock: ManualClock, end: datetime, step: timedelta) -> None:
    while clock.now() < end:
        clock.advance(step)
        sweep_once(core)


def sent_messages(core: Core, destination: str | None = None) -> list[tuple[str, Message]]:
    with Session(core.engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    return [(r.destination, Message.from_dict(r.payload)) for r in rows
            if destination is None or r.destination == destination]


def test_calendar_skips_weekends_and_federal_holidays() -> None:
    calendar = BusinessCalendar(frozenset({date(2026, 12, 24)}))
    assert not calendar.is_business_day(date(2026, 11, 26))  # Thanksgiving
    assert not calendar.is_business_day(date(2026, 11, 28))  # Saturday
    assert not calendar.is_business_day(date(2026, 12, 24))  # admin override
    assert calendar.add_business_days(date(2026, 11, 25), 2) == date(2026, 11, 30)
    moment = calendar.after_business_days(datetime(2026, 11, 25, 15, tzinfo=UTC), 2,
                                          "America/Chicago")
    assert moment == datetime(2026, 11, 30, 15, tzinfo=UTC)  # 09:00 in Chicago
    assert not calendar.in_working_hours(datetime(2026, 11, 30, 23, tzinfo=UTC),
                                         "America/Chicago")


def test_o32_unanswered_documents_request_reminders_follow_the_cadence(
    core: Core, clock: ManualClock
) -> None:
    case_id = open_case(core)
    to_documents(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.documents_sent,
                 {"documents": ["warrant"], "sent_on": TODAY, "method": "e-mail"}).ok
    run_until(core, clock, datetime(2026, 12, 11, 23, tzinfo=UTC), timedelta(hours=1))
    with Session(core.engine) as session:
        days = [r.as_of for r in session.exec(select(UsncbNoResponse)
                                              .order_by(col(UsncbNoResponse.as_of)))]
    # Every 2 business days at 09:00 Chicago: Thanksgiving and the weekend are skipped.
    assert days == [date(2026, 11, 25), date(2026, 11, 30), date(2026, 12, 2),
                    date(2026, 12, 4), date(2026, 12, 8), date(2026, 12, 10)]
    reminders = [m for d, m in sent_messages(core, case_id)
                 if m.title.startswith("Reminder: no USNCB")]
    assert len(reminders) == 6
    assert len(entries(core, action="reminder.sent", case_id=case_id)) == 6
    escalations = [(d, m) for d, m in sent_messages(core) if m.title.startswith("Escalation")]
    # The FRO from the third reminder on; the next approver from the fifth.
    assert [d for d, _ in escalations] == [FRO, FRO, FRO, DESIGNEE, FRO, DESIGNEE]
    # An answer stops the reminders.
    assert press(core, OFFICER, case_id, ActionId.documents_answer,
                 {"answer": "declined", "answered_on": "2026-12-11"}).ok
    run_until(core, clock, datetime(2026, 12, 18, 23, tzinfo=UTC), timedelta(hours=6))
    assert len(entries(core, action="reminder.sent", case_id=case_id)) == 6


def test_reminders_only_in_working_hours_and_followed_up_reschedules(
    core: Core, clock: ManualClock
) -> None:
    case_id = open_case(core)
    assert press(core, OFFICER, case_id, ActionId.validity_sent,
                 {"sent_on": TODAY, "method": "e-mail"}).ok
    clock.set(datetime(2026, 11, 26, 2, tzinfo=UTC))  # Wed 20:00 in Chicago: after hours
    sweep_once(core)
    assert not entries(core, action="reminder.sent")
    clock.set(datetime(2026, 11, 27, 15, 30, tzinfo=UTC))  # Friday 09:30 Chicago
    sweep_once(core)
    assert len(entries(core, action="reminder.sent")) == 1
    assert press(core, MANAGER, case_id, ActionId.reminder_followed_up).refusal
    assert press(core, OFFICER, case_id, ActionId.reminder_followed_up).ok
    clock.set(datetime(2026, 11, 30, 16, tzinfo=UTC))  # Monday: rescheduled to Tuesday
    sweep_once(core)
    assert len(entries(core, action="reminder.sent")) == 1
    clock.set(datetime(2026, 12, 1, 16, tzinfo=UTC))
    sweep_once(core)
    assert len(entries(core, action="reminder.sent")) == 2


def test_approval_reminder_then_escalation_to_the_next_approver(
    core: Core, clock: ManualClock
) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    run_until(core, clock, datetime(2026, 11, 25, 20, tzinfo=UTC), timedelta(hours=1))
    nudges = [(d, m.title) for d, m in sent_messages(core)
              if m.title.startswith(("Reminder: approval", "Escalated"))]
    assert nudges == [(FRO, f"Reminder: approval waiting for {case_id}"),
                      (DESIGNEE, f"Escalated: approval waiting for {case_id}")]
    assert press(core, DESIGNEE, case_id, ActionId.approve).ok
    run_until(core, clock, datetime(2026, 12, 2, 20, tzinfo=UTC), timedelta(hours=3))
    assert len(entries(core, action="reminder.sent", case_id=case_id)) == 2
    with Session(core.engine) as session:
        assert session.exec(select(Approval)).one().decided_by == DESIGNEE


def test_o31_training_expiry_reminders_30_7_1_days_before(core: Core,
                                                          clock: ManualClock) -> None:
    # The sample officer's training was 30 days before the start: it expires 2027-10-24.
    for day in (date(2027, 9, 24), date(2027, 10, 17), date(2027, 10, 23)):
        clock.set(datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=16))
        sweep_once(core)
        sweep_once(core)
    dms = [m for d, m in sent_messages(core, OFFICER) if "training" in m.title.lower()]
    assert [m.text.split("(")[1].split(")")[0] for m in dms] == ["30 days", "7 days", "1 days"]


def test_weekly_digest_once_per_iso_week_with_correct_content(
    core: Core, clock: ManualClock
) -> None:
    waiting = open_case(core)
    to_documents(core, waiting)
    press(core, OFFICER, waiting, ActionId.documents_sent,
          {"documents": ["warrant"], "sent_on": TODAY, "method": "e-mail"})
    pending = open_case(core)
    to_approval(core, pending)
    press(core, OFFICER, pending, ActionId.request_approval)
    misuse = open_case(core)
    press(core, OFFICER, misuse, ActionId.withdraw, {"reason": "duplicate"})
    # Monday 2026-11-30, 07:00 Chicago: too early; 08:00: the digest goes, once.
    clock.set(datetime(2026, 11, 30, 13, tzinfo=UTC))
    sweep_once(core)
    assert not [m for d, m in sent_messages(core, MANAGER)]
    clock.set(datetime(2026, 11, 30, 14, 5, tzinfo=UTC))
    sweep_once(core)
    sweep_once(core)
    digests = [m for d, m in sent_messages(core, MANAGER) if m.title.startswith("Weekly")]
    assert len(digests) == 1
    digest = digests[0]
    assert digest.title == "Weekly digest 2026-W49"
    fields = dict(digest.fields)
    assert fields["Opened this week"] == "0" and fields["Closed this week"] == "0"
    assert "Underlying documentation: 1" in fields["Open by stage"]
    assert "Supervisory approval: 1" in fields["Open by stage"]
    notes = "\n".join(digest.notes)
    assert f"USNCB overdue: {waiting} documents: 7 days" in notes
    assert f"Approval pending: {pending} (use) waiting for <@{FRO}>: 7 days" in notes
    assert "Training: <@U0OFF2>: expired or none on record" in notes
    # Records staff do not use notices: their lapsed training is not a manager's news (#16).
    assert "<@U0REC1>" not in notes
    # The digest carries no subject detail.
    from tests.helpers import SUBJECT

    for detail in SUBJECT.values():
        assert detail not in digest.all_text()


def test_digest_week_boundary_and_empty_week(core: Core, clock: ManualClock) -> None:
    clock.set(datetime(2026, 12, 28, 15, tzinfo=UTC))  # Monday of 2026-W53
    sweep_once(core)
    clock.set(datetime(2027, 1, 1, 18, tzinfo=UTC))  # Friday: still 2026-W53
    sweep_once(core)
    clock.set(datetime(2027, 1, 4, 15, tzinfo=UTC))  # 2027-W01
    sweep_once(core)
    titles = [m.title for d, m in sent_messages(core, MANAGER)]
    assert titles == ["Weekly digest 2026-W53", "Weekly digest 2027-W01"]


def test_a_sweep_with_no_digest_due_writes_nothing(core: Core, clock: ManualClock) -> None:
    clock.set(datetime(2026, 11, 30, 14, 5, tzinfo=UTC))
    assert sweep_digests(engine=core.engine, clock=clock, settings=core.settings) == 1
    with transactions(core.engine) as began:
        clock.advance(timedelta(hours=1))  # sent already: one read, no write transaction
        assert sweep_digests(engine=core.engine, clock=clock, settings=core.settings) == 0
    assert len(began) == 1
    assert len(entries(core, action="digest.sent")) == 1


def test_notice_digest_shows_a_manager_their_digest_now(core: Core) -> None:
    shown = core.command(actor=MANAGER, text="/notice digest")
    assert shown.ok and shown.private[0].title.startswith("Weekly digest")
    assert core.command(actor=OFFICER, text="/notice digest").refusal


def test_scheduler_runs_sweeps_and_publishes_heads(core: Core, tmp_path: object) -> None:
    from pathlib import Path

    from bot.schedule.runner import start_scheduler

    heads = Path(str(tmp_path)) / "heads.jsonl"
    core.settings = core.settings.model_copy(update={"heads_file": str(heads)})
    delivered = threading.Event()
    scheduler = start_scheduler(core, deliver=delivered.set)
    try:
        jobs = {job.id for job in scheduler.get_jobs()}
        assert jobs == {"sweeps", "relay", "heads"}
        for job in scheduler.get_jobs():
            job.func()  # run each once, as a tick would
        assert delivered.wait(timeout=10)  # the relay tick woke the relay thread
    finally:
        scheduler.shutdown(wait=True)
    assert "outbox-relay" not in {t.name for t in threading.enumerate()}
    assert heads.read_text().count('"seq"') == 1
