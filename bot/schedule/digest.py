"""The weekly digest for managers (§4.1-4.2): where their AORs' cases stand. Sent Monday 08:00
in the manager's time zone, exactly once per ISO year and week (a unique key decides)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, or_, true
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from bot.clock import Clock
from bot.core import labels
from bot.core.context import Ctx, unit_of_work
from bot.core.reminders import calendar, zone_of
from bot.messages import DestinationKind, Message, mention
from config.settings import Settings
from storage.db import insert_into
from storage.models import (
    AorManager,
    Approval,
    ApprovalStatus,
    Case,
    CloseReason,
    DigestSent,
    Person,
    PersonRole,
    RequestStatus,
    Role,
    Stage,
    TrainingCompletion,
    UsncbRequest,
)

SEND_AT = time(8, 0)
TRAINED_ROLES = (Role.officer.value, Role.supervisor.value)
SYSTEM_ACTOR = "noticebot:digest"


def week_start(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, time.min, tzinfo=ZoneInfo(zone))


@dataclass
class RecentCase:
    id: str
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None


@dataclass
class AorFacts:
    """What a digest says about one AOR. Lines that depend only on the day are rendered here;
    what depends on the manager's week start is decided in `build_digest`."""

    open_by_stage: Counter[str] = field(default_factory=Counter)  # stage label → cases
    recent: list[RecentCase] = field(default_factory=list)  # opened or closed since `since`
    overdue: list[tuple[date, int, str]] = field(default_factory=list)  # (sent_on, id, line)
    pending: list[tuple[datetime, int, str]] = field(default_factory=list)  # (requested, id, line)
    training: list[tuple[str, str]] = field(default_factory=list)  # (user, line)
    orphaned: list[str] = field(default_factory=list)  # open cases whose officer left


@dataclass
class DigestFacts:
    today: date
    since: datetime
    aors: dict[str, AorFacts]


def load_facts(session: Session, settings: Settings, *, today: date, since: datetime,
               aors: list[str] | None = None) -> DigestFacts:
    """Every digest's content for `aors` (all AORs if None) in five grouped queries. A sweep
    reads them once for all its managers: one query set per manager took most of the time of
    500 digests (README: Performance, P4)."""
    facts: defaultdict[str, AorFacts] = defaultdict(AorFacts)

    def only(column: Any) -> ColumnElement[bool]:
        return col(column).in_(aors) if aors is not None else true()

    for aor, stage, count in session.exec(
        select(Case.aor_id, Case.stage, func.count()).where(only(Case.aor_id),
                                                            Case.stage != Stage.closed)
        .group_by(col(Case.aor_id), col(Case.stage))
    ).all():
        facts[aor].open_by_stage[labels.STAGE_LABELS.get(stage, stage)] += count
    for aor, case_id, opened_at, closed_at, close_reason in session.execute(
        sa_select(col(Case.aor_id), col(Case.id), col(Case.opened_at), col(Case.closed_at),
                  col(Case.close_reason))
        .where(only(Case.aor_id),
               or_(col(Case.opened_at) >= since, col(Case.closed_at) >= since))
    ).all():
        facts[aor].recent.append(RecentCase(case_id, opened_at, closed_at, close_reason))
    # For one manager's AORs, requests are found through their cases (also as a subquery, so
    # that SQLite, which has no statistics, probes ix_usncb_request_case_status case by case
    # instead of walking every waiting request there is).
    def of_cases(case_id: Any) -> ColumnElement[bool]:
        return (col(case_id).in_(select(Case.id).where(only(Case.aor_id))) if aors is not None
                else true())

    cal = calendar(settings)
    for aor, request_id, case_id, kind, sent_on in session.execute(
        sa_select(col(Case.aor_id), col(UsncbRequest.id), col(UsncbRequest.case_id),
                  col(UsncbRequest.kind), col(UsncbRequest.sent_on))
        .join(Case, col(Case.id) == col(UsncbRequest.case_id))
        .where(of_cases(UsncbRequest.case_id), col(UsncbRequest.answer).is_(None),
               col(UsncbRequest.status) == RequestStatus.sent)
    ).all():
        if cal.add_business_days(sent_on, settings.usncb_remind_every) <= today:
            assert request_id is not None
            facts[aor].overdue.append((sent_on, request_id, f"{case_id} {kind.replace('_', ' ')}"
                                       f": {(today - sent_on).days} days"))
    for aor, approval_id, case_id, kind, routed_to, requested_at in session.execute(
        sa_select(col(Case.aor_id), col(Approval.id), col(Approval.case_id), col(Approval.kind),
                  col(Approval.routed_to), col(Approval.requested_at))
        .join(Case, col(Case.id) == col(Approval.case_id))
        .where(of_cases(Approval.case_id), col(Approval.status) == ApprovalStatus.pending)
    ).all():
        assert approval_id is not None
        facts[aor].pending.append((requested_at, approval_id,
                                   f"{case_id} ({kind.replace('_', ' ')}) waiting for "
                                   f"{mention(routed_to)}: {(today - requested_at.date()).days} "
                                   f"days"))
    # Open cases whose officer left the roster (or lost the officer role): flagged until the
    # FRO or a designee reassigns them (§5.3, §4.3).
    officers = select(PersonRole.user_id).where(PersonRole.role == Role.officer)
    for aor, case_id, officer in session.execute(
        sa_select(col(Case.aor_id), col(Case.id), col(Case.officer))
        .join(Person, col(Person.user_id) == col(Case.officer))
        .where(only(Case.aor_id), col(Case.stage) != Stage.closed,
               or_(col(Person.active).is_(False), col(Case.officer).not_in(officers)))
        .order_by(col(Case.id))
    ).all():
        facts[aor].orphaned.append(f"{case_id}: {mention(officer)} left the roster; reassign it "
                                   f"with "
                                   f"`/notice reassign {case_id} @officer`")
    # Each active officer's latest completion, as access.training_status reads it for one.
    # Only people who use notices or decide on their use need the training (§5.3): records,
    # OPLA or admin staff without it are not news to a manager.
    for home, user_id, last in session.exec(
        select(Person.aor_id, Person.user_id, func.max(TrainingCompletion.completed_on))
        .join(TrainingCompletion, col(TrainingCompletion.user_id) == col(Person.user_id),
              isouter=True)
        .where(only(Person.aor_id), col(Person.aor_id).is_not(None),
               col(Person.active).is_(True),
               col(Person.user_id).in_(select(PersonRole.user_id)
                                       .where(col(PersonRole.role).in_(TRAINED_ROLES))))
        .group_by(col(Person.aor_id), col(Person.user_id))
    ).all():
        assert home is not None
        expires_on = last + timedelta(days=settings.training_validity_days) if last else None
        if expires_on is None or expires_on <= today:
            facts[home].training.append((user_id, f"{mention(user_id)}: expired or none on record"))
        elif expires_on <= today + timedelta(days=30):
            facts[home].training.append((user_id,
                                         f"{mention(user_id)}: expires {expires_on.isoformat()}"))
    return DigestFacts(today=today, since=since, aors=dict(facts))


def build_digest(ctx: Ctx, manager: str, facts: DigestFacts | None = None) -> Message:
    """The manager's digest, from `facts` read for all AORs by a sweep, or read for this
    manager's AORs now."""
    start = week_start(ctx.now, zone_of(ctx, manager))
    aors = list(ctx.session.exec(select(AorManager.aor_id).where(AorManager.user_id == manager)))
    if facts is None or facts.today != ctx.today or facts.since > start:
        facts = load_facts(ctx.session, ctx.settings, today=ctx.today, since=start, aors=aors)
    mine = [facts.aors[aor] for aor in aors if aor in facts.aors]
    opened = sum(1 for f in mine for c in f.recent if c.opened_at >= start)
    closed = [c for f in mine for c in f.recent
              if c.closed_at is not None and c.closed_at >= start]
    findings = sorted(c.id for c in closed
                      if c.close_reason in (CloseReason.misuse, CloseReason.prohibited))
    by_stage: Counter[str] = Counter()
    for f in mine:
        by_stage.update(f.open_by_stage)
    overdue = [line for _, _, line in sorted(item for f in mine for item in f.overdue)]
    pending = [line for _, _, line in sorted(item for f in mine for item in f.pending)]
    training = [line for _, line in sorted(item for f in mine for item in f.training)]
    orphaned = sorted(line for f in mine for line in f.orphaned)
    week = start.isocalendar()
    empty = not (opened or closed or by_stage or overdue or pending or training or orphaned)
    fields = (
        ("AORs", ", ".join(aors) or "none"),
        ("Opened this week", str(opened)),
        ("Closed this week", str(len(closed))),
        ("Open by stage", ", ".join(f"{k}: {v}" for k, v in sorted(by_stage.items()))
         or "none"),
        ("Misuse / prohibited findings", ", ".join(findings) or "none"),
    )
    notes = tuple(
        [f"Officer gone: {line}" for line in orphaned]
        + [f"USNCB overdue: {line}" for line in overdue]
        + [f"Approval pending: {line}" for line in pending]
        + [f"Training: {line}" for line in training]
    )
    return Message(
        title=f"Weekly digest {week.year}-W{week.week:02d}",
        text="Nothing happened in your AORs this week and nothing is waiting." if empty
        else "Where your AORs' notice cases stand.",
        fields=fields, notes=notes, section="§4.1, §4.2, §6",
    )


def _due(session: Session, now: datetime) -> list[tuple[str, int, int]]:
    """(manager, ISO year, ISO week) of each digest due now and not yet sent, read without a
    write transaction: most sweeps send none, and must stay cheap however many managers."""
    zones = dict(session.exec(
        select(Person.user_id, Person.timezone)
        .join(AorManager, col(AorManager.user_id) == col(Person.user_id))
        .where(col(Person.active).is_(True))).all())
    sent = set(session.exec(
        select(DigestSent.manager, DigestSent.iso_year, DigestSent.iso_week)
        .where(col(DigestSent.sent_at) >= now - timedelta(days=8))).all())
    due = []
    for manager in sorted(zones):
        start = week_start(now, zones[manager])
        if now < start + timedelta(hours=SEND_AT.hour, minutes=SEND_AT.minute):
            continue
        week = start.isocalendar()
        if (manager, week.year, week.week) not in sent:
            due.append((manager, week.year, week.week))
    return due


def sweep_digests(*, engine: Engine, clock: Clock, settings: Settings) -> int:
    """Send each manager whose Monday 08:00 has passed this ISO week their digest, once."""
    with Session(engine) as session:
        due = _due(session, clock.now())
    sent = 0
    facts: DigestFacts | None = None
    for manager, iso_year, iso_week in due:
        with unit_of_work(engine, clock=clock, settings=settings, actor=SYSTEM_ACTOR) as ctx:
            claimed = ctx.session.execute(
                insert_into(ctx.session, DigestSent)
                .values(manager=manager, iso_year=iso_year, iso_week=iso_week, sent_at=ctx.now)
                .on_conflict_do_nothing().returning(col(DigestSent.manager))
            ).first()
            if claimed is None:
                continue  # another replica sent it since we looked
            if facts is None or facts.today != ctx.today:
                # Read once, when the first digest of this sweep is due: most sweeps send none.
                facts = load_facts(ctx.session, ctx.settings, today=ctx.today,
                                   since=ctx.now - timedelta(days=8))
            ctx.send(DestinationKind.dm, manager, build_digest(ctx, manager, facts))
            ctx.state("digest.sent", manager=manager, iso_year=iso_year, iso_week=iso_week)
            sent += 1
    return sent
