"""The moves every step is made of: load and lock a case, check its stage, tick a checklist
line, enter a stage, send a step back, close. Steps call these; callers hold the transaction."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import col, select, update

from bot.core import access, reminders
from bot.core.context import Ctx
from bot.core.errors import FormErrors, Refused
from bot.core.labels import CLOSE_LABELS, STAGE_LABELS
from bot.messages import (
    Action,
    ActionId,
    ActionValue,
    DestinationKind,
    Message,
    RefusalCode,
    mention,
)
from storage.models import (
    Approval,
    ApprovalStatus,
    Case,
    ChecklistItem,
    CloseReason,
    Contact,
    Person,
    PersonRole,
    Role,
    Stage,
)


def load_case(ctx: Ctx, case_id: str | None, *, lock: bool = True) -> Case:
    """The case, row-locked on PostgreSQL so that concurrent transitions serialize."""
    if not case_id:
        raise Refused("No case given.", code=RefusalCode.no_case)
    case = ctx.session.get(Case, case_id.strip().upper(), with_for_update=lock)
    if case is None:
        raise Refused(f"There is no case {case_id}.", code=RefusalCode.no_case)
    return case


def require_stage(case: Case, *stages: Stage) -> None:
    if case.stage not in {s.value for s in stages}:
        if case.stage == Stage.closed:
            raise Refused(f"{case.id} is closed.", code=RefusalCode.closed)
        wanted = " or ".join(STAGE_LABELS[s.value] for s in stages)
        raise Refused(
            f"{case.id} is at '{STAGE_LABELS.get(case.stage, case.stage)}'; this step "
            f"needs '{wanted}' first.",
            code=RefusalCode.stage,
        )


def refuse_if_done(ctx: Ctx, case: Case, stages: tuple[Stage, ...]) -> None:
    """A button of a step that is finished: say it is done, by whom and when, rather than
    that it 'needs' a step the case is long past."""
    for stage in stages:
        item = ctx.session.get(ChecklistItem, (case.id, stage.value))
        if item is not None and item.done:
            when = f" on {item.done_at.date().isoformat()}" if item.done_at else ""
            by = f" by {mention(item.done_by)}" if item.done_by else ""
            raise Refused(
                f"{case.id}: '{STAGE_LABELS[stage.value]}' is already done "
                f"({item.outcome or 'done'}), recorded{by}{when}.",
                code=RefusalCode.already_done,
            )


def require_open(case: Case) -> None:
    if case.stage == Stage.closed:
        raise Refused(f"{case.id} is closed.", code=RefusalCode.closed)


def complete(ctx: Ctx, case: Case, stage: Stage, outcome: str) -> None:
    item = ctx.session.get(ChecklistItem, (case.id, stage.value))
    if item is None:
        item = ChecklistItem(case_id=case.id, step=stage.value)
    item.done, item.outcome, item.done_by, item.done_at = True, outcome, ctx.actor, ctx.now
    ctx.session.add(item)
    ctx.state("step.completed", case_id=case.id, step=stage.value, outcome=outcome)


def advance(ctx: Ctx, case: Case, stage: Stage) -> None:
    previous = case.stage
    case.stage = stage
    if stage is Stage.doubt:
        case.doubt_round += 1  # §5.2: each round of doubt needs its own confer/research/context
    ctx.session.add(case)
    if stage not in (Stage.ready, Stage.closed):
        item = ctx.session.get(ChecklistItem, (case.id, stage.value))
        if item is None:
            ctx.session.add(ChecklistItem(case_id=case.id, step=stage.value))
        elif item.done or item.outcome:
            reopen(ctx, item)  # a stage entered again is done again, for the new facts
    ctx.state("case.stage", case_id=case.id, previous=previous, stage=stage.value,
              doubt_round=case.doubt_round if stage is Stage.doubt else None)


def reopen(ctx: Ctx, item: ChecklistItem) -> None:
    item.done, item.outcome, item.done_by, item.done_at = False, None, None, None
    ctx.session.add(item)


# The steps after supervisory approval, in order: a case sent back resumes at the first one
# not done (a contest sent back to review resumes at the person's response, not the documents).
AFTER_APPROVAL = (Stage.documents, Stage.use_authorization, Stage.disclosure,
                  Stage.awaiting_response, Stage.representations)


def resumes(stage: Stage) -> tuple[Stage, ...]:
    """Where `resume_after(stage)` can lead: a later step after approval, or ready."""
    following = AFTER_APPROVAL[AFTER_APPROVAL.index(stage) + 1:] if stage in AFTER_APPROVAL \
        else AFTER_APPROVAL
    return (*following, Stage.ready)


def resume_after(ctx: Ctx, case: Case, stage: Stage) -> None:
    following = AFTER_APPROVAL[AFTER_APPROVAL.index(stage) + 1:] if stage in AFTER_APPROVAL \
        else AFTER_APPROVAL
    for candidate in following:
        if candidate is Stage.awaiting_response and case.respond_by is None:
            continue  # the footnote 2 exception: nothing was disclosed, no window to wait for
        item = ctx.session.get(ChecklistItem, (case.id, candidate.value))
        if item is None or not item.done:
            advance(ctx, case, candidate)
            return
    advance(ctx, case, Stage.ready)
    on_ready(ctx, case)


def close(ctx: Ctx, case: Case, reason: CloseReason) -> None:
    previous = case.stage
    case.stage, case.close_reason, case.closed_at = Stage.closed, reason, ctx.now
    ctx.session.add(case)
    ctx.session.execute(
        update(Approval)
        .where(col(Approval.case_id) == case.id, col(Approval.status) == ApprovalStatus.pending)
        .values(status=ApprovalStatus.cancelled, decided_at=ctx.now)
    )
    reminders.stop_case(ctx, case.id)
    ctx.state("case.closed", case_id=case.id, previous=previous, reason=reason.value)


def people_with_role(ctx: Ctx, role: Role) -> list[str]:
    return list(
        ctx.session.exec(
            select(PersonRole.user_id)
            .join(Person, col(Person.user_id) == col(PersonRole.user_id))
            .where(PersonRole.role == role.value, col(Person.active).is_(True))
            .order_by(col(PersonRole.user_id))
        ).all()
    )


def notify_do_not_use(ctx: Ctx, case: Case, reason: CloseReason) -> None:
    """§5.2: notify OPLA, the USNCB, USCIS and other configured offices, by case id only."""
    message = Message(
        title=f"{case.id}: notice must not be used",
        text=f"{CLOSE_LABELS[reason].capitalize()}. Case {case.id} (AOR {case.aor_id}) "
        "was closed under ICE Directive 15006.1 §5.2. Authorized staff can open the case for "
        "details.",
        section="§5.2",
        actions=(Action("Show details", ActionValue(ActionId.show_case, case.id)),),
    )
    for user_id in people_with_role(ctx, Role.opla):
        ctx.send(DestinationKind.dm, user_id, message, case_id=case.id)
    contacts = ctx.session.exec(
        select(Contact).where(col(Contact.active).is_(True)).order_by(col(Contact.id))
    ).all()
    for contact in contacts:
        ctx.send(DestinationKind.channel, contact.channel, message, case_id=case.id)
    ctx.state("case.notified", case_id=case.id, reason=reason.value,
              opla=people_with_role(ctx, Role.opla), contacts=[c.id for c in contacts])


def training(ctx: Ctx, user_id: str) -> None:
    access.require_training(
        ctx.session, user_id, today=ctx.today, validity_days=ctx.settings.training_validity_days
    )


def not_future(values: dict[str, Any], *names: str, today: date) -> None:
    errors = {n: "cannot be in the future" for n in names if values.get(n) and values[n] > today}
    if errors:
        raise FormErrors(errors)


def send_back(ctx: Ctx, case: Case, stage: Stage, *, to: Stage, why: str) -> None:
    """`stage` is to be done again: its checklist line says why (the thread shows it with ↩),
    and the case returns to `to`."""
    item = ctx.session.get(ChecklistItem, (case.id, stage.value))
    if item is not None:
        item.outcome = why
        ctx.session.add(item)
    advance(ctx, case, to)


def on_ready(ctx: Ctx, case: Case) -> None:
    ctx.state("case.ready", case_id=case.id, documents_preferred=case.documents_preferred)
    reminders.on_ready(ctx, case)
