"""Reminders as data, the core's half: the steps schedule, move and stop a case's reminder rows
in the transaction that changes the case, and the officer answers a reminder ("followed up",
"snooze"). The sweeps that act on due rows are in bot/schedule/reminders.py, above the core."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import update
from sqlmodel import col, select

from bot.calendar import BusinessCalendar
from bot.core import access
from bot.core.context import Ctx
from bot.core.errors import Refused
from bot.messages import RefusalCode
from config.settings import Settings
from storage.models import Approval, Case, Reminder, ReminderKind, UsncbRequest


@lru_cache(maxsize=8)
def calendar_for(extra: frozenset[date]) -> BusinessCalendar:
    return BusinessCalendar(extra)  # building the holiday table is worth caching


def calendar(settings: Settings) -> BusinessCalendar:
    return calendar_for(settings.extra_holidays)


def zone_of(ctx: Ctx, user_id: str) -> str:
    found = access.person(ctx.session, user_id)
    return found.timezone if found else "America/New_York"


def _upsert(ctx: Ctx, kind: ReminderKind, ref: str, due: datetime,
            case_id: str | None) -> None:
    existing = ctx.session.exec(
        select(Reminder).where(Reminder.kind == kind, Reminder.ref == ref)).first()
    if existing is None:
        ctx.session.add(Reminder(kind=kind, ref=ref, case_id=case_id, next_due_at=due,
                                 created_at=ctx.now))
    else:
        existing.next_due_at, existing.active, existing.sent = due, True, 0
        ctx.session.add(existing)


def on_request(ctx: Ctx, case: Case, request: UsncbRequest) -> None:
    due = calendar(ctx.settings).after_business_days(
        ctx.now, ctx.settings.usncb_remind_every, zone_of(ctx, case.officer))
    _upsert(ctx, ReminderKind.usncb_request, str(request.id), due, case.id)


def on_approval(ctx: Ctx, case: Case, approval: Approval) -> None:
    due = calendar(ctx.settings).after_business_days(
        ctx.now, ctx.settings.approval_remind_after, zone_of(ctx, approval.routed_to))
    _upsert(ctx, ReminderKind.approval, str(approval.id), due, case.id)


def on_training(ctx: Ctx, user_id: str) -> None:
    due = next_training_due(ctx, user_id)
    if due is not None:
        _upsert(ctx, ReminderKind.training, user_id, due, None)


def on_response_window(ctx: Ctx, case: Case) -> None:
    if case.respond_by is None:
        return
    due = calendar(ctx.settings).at_start_of_work(case.respond_by + timedelta(days=1),
                                                   zone_of(ctx, case.officer))
    _upsert(ctx, ReminderKind.response_window, case.id, due, case.id)


def on_ready(ctx: Ctx, case: Case) -> None:
    due = ctx.now + timedelta(days=ctx.settings.outcome_remind_days)
    _upsert(ctx, ReminderKind.ready_outcome, case.id, due, case.id)


def stop(ctx: Ctx, kind: ReminderKind, ref: object) -> None:
    ctx.session.execute(update(Reminder).where(col(Reminder.kind) == kind,
                                               col(Reminder.ref) == str(ref))
                        .values(active=False))


def stop_case(ctx: Ctx, case_id: str) -> None:
    ctx.session.execute(update(Reminder).where(col(Reminder.case_id) == case_id)
                        .values(active=False))


def next_training_due(ctx: Ctx, user_id: str) -> datetime | None:
    status = access.training_status(ctx.session, user_id, today=ctx.today,
                                    validity_days=ctx.settings.training_validity_days)
    if status.expires_on is None:
        return None
    zone = zone_of(ctx, user_id)
    cal = calendar(ctx.settings)
    for days in sorted(ctx.settings.training_reminder_days, reverse=True):
        day = status.expires_on - timedelta(days=days)
        moment = cal.at_start_of_work(day, zone)
        if moment > ctx.now:
            return moment
    return None


# --- the officer's answers to a reminder -------------------------------------------------------


def _own_reminder(ctx: Ctx, case: Case, ref: int | None) -> Reminder:
    reminder = ctx.session.get(Reminder, ref) if ref is not None else None
    if reminder is None or reminder.case_id != case.id or not reminder.active:
        raise Refused("That reminder is no longer active.", code=RefusalCode.stale)
    access.require_person(ctx.session, ctx.actor)  # off the roster: no longer theirs to answer
    access.require_owner(case, ctx.actor)
    return reminder


def followed_up(ctx: Ctx, case: Case, ref: int | None) -> None:
    reminder = _own_reminder(ctx, case, ref)
    reminder.next_due_at = calendar(ctx.settings).after_business_days(
        ctx.now, ctx.settings.usncb_remind_every, zone_of(ctx, case.officer))
    ctx.session.add(reminder)
    ctx.state("reminder.followed_up", case_id=case.id, reminder_id=reminder.id,
              next_due_at=reminder.next_due_at)


def snooze(ctx: Ctx, case: Case, ref: int | None) -> None:
    reminder = _own_reminder(ctx, case, ref)
    reminder.next_due_at = calendar(ctx.settings).after_business_days(
        ctx.now, 1, zone_of(ctx, case.officer))
    ctx.session.add(reminder)
    ctx.state("reminder.snoozed", case_id=case.id, reminder_id=reminder.id,
              next_due_at=reminder.next_due_at)
