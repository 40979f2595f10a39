"""The weekly digest for managers (§4.1-4.2): where their AORs' cases stand. Sent Monday 08:00
in the manager's time zone, exactly once per ISO year and week (a unique key decides)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.core import access, thread
from bot.core.context import Ctx, unit_of_work
from bot.messages import DestinationKind, Message
from bot.schedule.reminders import calendar, zone_of
from config.settings import Settings
from storage.models import (
    AorManager,
    Approval,
    ApprovalStatus,
    Case,
    CloseReason,
    DigestSent,
    Person,
    RequestStatus,
    Stage,
    UsncbRequest,
)

SEND_AT = time(8, 0)
SYSTEM_ACTOR = "noticebot:digest"


def week_start(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, time.min, tzinfo=ZoneInfo(zone))


def build_digest(ctx: Ctx, manager: str) -> Message:
    start = week_start(ctx.now, zone_of(ctx, manager))
    aors = list(ctx.session.exec(select(AorManager.aor_id).where(AorManager.user_id == manager)))
    cases = ctx.session.exec(select(Case).where(col(Case.aor_id).in_(aors))).all()
    opened = [c for c in cases if c.opened_at >= start]
    closed = [c for c in cases if c.closed_at is not None and c.closed_at >= start]
    findings = [c for c in closed if c.close_reason in (CloseReason.misuse,
                                                         CloseReason.prohibited)]
    by_stage = Counter(thread.STAGE_LABELS.get(c.stage, c.stage) for c in cases
                       if c.stage != Stage.closed)
    ids = [c.id for c in cases]
    cal = calendar(ctx.settings)
    overdue = []
    for request in ctx.session.exec(
        select(UsncbRequest).where(col(UsncbRequest.case_id).in_(ids),
                                   col(UsncbRequest.answer).is_(None),
                                   UsncbRequest.status == RequestStatus.sent)
        .order_by(col(UsncbRequest.sent_on))
    ).all():
        due = cal.add_business_days(request.sent_on, ctx.settings.usncb_remind_every)
        if due <= ctx.today:
            overdue.append(f"{request.case_id} {request.kind.replace('_', ' ')}: "
                           f"{(ctx.today - request.sent_on).days} days")
    pending = [f"{a.case_id} ({a.kind.replace('_', ' ')}) waiting for <@{a.routed_to}>: "
               f"{(ctx.today - a.requested_at.date()).days} days"
               for a in ctx.session.exec(
                   select(Approval).where(col(Approval.case_id).in_(ids),
                                          Approval.status == ApprovalStatus.pending)
                   .order_by(col(Approval.requested_at))).all()]
    training = []
    for person in ctx.session.exec(select(Person).where(col(Person.aor_id).in_(aors),
                                                        col(Person.active).is_(True))
                                   .order_by(col(Person.user_id))).all():
        status = access.training_status(ctx.session, person.user_id, today=ctx.today,
                                        validity_days=ctx.settings.training_validity_days)
        if status.expires_on is None or status.expires_on <= ctx.today:
            training.append(f"<@{person.user_id}>: expired or none on record")
        elif status.expires_on <= ctx.today + timedelta(days=30):
            training.append(f"<@{person.user_id}>: expires {status.expires_on.isoformat()}")
    week = start.isocalendar()
    empty = not (opened or closed or by_stage or overdue or pending or training)
    fields = (
        ("AORs", ", ".join(aors) or "none"),
        ("Opened this week", str(len(opened))),
        ("Closed this week", str(len(closed))),
        ("Open by stage", ", ".join(f"{k}: {v}" for k, v in sorted(by_stage.items()))
         or "none"),
        ("Misuse / prohibited findings", ", ".join(c.id for c in findings) or "none"),
    )
    notes = tuple(
        [f"USNCB overdue: {line}" for line in overdue]
        + [f"Approval pending: {line}" for line in pending]
        + [f"Training: {line}" for line in training]
    )
    return Message(
        title=f"Weekly digest {week.year}-W{week.week:02d}",
        text="Nothing happened in your AORs this week and nothing is waiting." if empty
        else "Where your AORs' notice cases stand.",
        fields=fields, notes=notes, section="§4.1, §4.2, §6",
    )


def managers(session: Session) -> list[str]:
    return sorted(set(session.exec(
        select(AorManager.user_id).join(Person, col(Person.user_id) == col(AorManager.user_id))
        .where(col(Person.active).is_(True)))))


def sweep_digests(*, engine: Engine, clock: Clock, settings: Settings) -> int:
    """Send each manager whose Monday 08:00 has passed this ISO week their digest, once."""
    with Session(engine) as session:
        everyone = managers(session)
    sent = 0
    for manager in everyone:
        with unit_of_work(engine, clock=clock, settings=settings, actor=SYSTEM_ACTOR) as ctx:
            start = week_start(ctx.now, zone_of(ctx, manager))
            if ctx.now < start + timedelta(hours=SEND_AT.hour, minutes=SEND_AT.minute):
                continue
            week = start.isocalendar()
            insert = (postgresql_insert if ctx.session.get_bind().dialect.name == "postgresql"
                      else sqlite_insert)
            claimed = ctx.session.execute(
                insert(DigestSent).values(manager=manager, iso_year=week.year,
                                          iso_week=week.week, sent_at=ctx.now)
                .on_conflict_do_nothing().returning(col(DigestSent.manager))
            ).first()
            if claimed is None:
                continue  # another replica (or an earlier sweep) sent it
            ctx.send(DestinationKind.dm, manager, build_digest(ctx, manager))
            ctx.state("digest.sent", manager=manager, iso_year=week.year, iso_week=week.week)
            sent += 1
    return sent
