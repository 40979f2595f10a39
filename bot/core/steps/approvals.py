"""What the three approvals share (supervisory approval, the footnote 2 exception, a change of
intended use): routing a request to the AOR's approver and recording the decision, once."""

from __future__ import annotations

from sqlmodel import col, update

from bot.core import access, buttons, labels, reminders
from bot.core.context import Ctx
from bot.core.errors import Refused
from bot.core.transitions import training
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
    ApprovalKind,
    ApprovalStatus,
    Case,
    IntendedUse,
    ReminderKind,
)


def approval_dm(case: Case, approval: Approval) -> Message:
    assert approval.id is not None
    if approval.kind == ApprovalKind.use:
        title = f"Approval requested: {case.id}"
        text = (f"{mention(approval.requested_by)} asks to use {case.id} (AOR {case.aor_id}) "
                f"and to "
                "request its underlying documentation via the USNCB (§5.1(3), §4.2(3)). The "
                "preliminary review found no remaining indications of misuse.")
        section = "§5.1(3), §2.1, §4.2(3)"
    elif approval.kind == ApprovalKind.use_change:
        title = f"Change of intended use: {case.id}"
        text = (f"{mention(approval.requested_by)} asks to change the intended use of {case.id} "
                f"(AOR {case.aor_id}) from {labels.USE_LABELS[case.intended_use]} to "
                f"{labels.USE_LABELS[approval.requested_use or case.intended_use]}. Open details "
                "to read the reason. Use in immigration proceedings needs a granted use "
                "authorization (§5.1(5)).")
        section = "§5.1(5), §4.4(1)"
    else:
        title = f"Footnote 2 exception: {case.id}"
        text = (f"{mention(approval.requested_by)} asks to skip advance disclosure to the "
                f"person for "
                f"{case.id}: notifying would jeopardize law enforcement. Open details to read "
                "the justification.")
        section = "§4.3(8) fn. 2"
    key = f"{case.id}:approval:{approval.id}"
    if approval.status != ApprovalStatus.pending:
        return Message(title=title, text=f"{text}\n\n{labels.DECISION_LABELS[approval.status]} "
                       f"by {mention(str(approval.decided_by))}.", section=section, key=key)
    return Message(title=title, text=text, section=section,
                   actions=buttons.decision_actions(approval), key=key)


def route(ctx: Ctx, case: Case, kind: ApprovalKind, justification: str = "",
          requested_use: IntendedUse | None = None) -> Approval:
    routed_to = access.route_approval(ctx.session, case, today=ctx.today)
    approval = Approval(case_id=case.id, kind=kind, requested_by=ctx.actor,
                        requested_at=ctx.now, routed_to=routed_to,
                        justification=ctx.vault.seal(justification),
                        requested_use=requested_use)
    ctx.session.add(approval)
    ctx.session.flush()
    ctx.state("approval.requested", case_id=case.id, approval_id=approval.id, kind=kind.value,
              routed_to=routed_to, requested_use=approval.requested_use)
    ctx.send(DestinationKind.dm, routed_to, approval_dm(case, approval), case_id=case.id)
    reminders.on_approval(ctx, case, approval)
    return approval


def decide(ctx: Ctx, case: Case, ref: int | None, kind: ApprovalKind, status: ApprovalStatus,
           reason: str = "") -> Approval:
    approval = ctx.session.get(Approval, ref) if ref is not None else None
    if approval is None or approval.case_id != case.id or approval.kind != kind:
        raise Refused("That approval request does not exist.", code=RefusalCode.no_approval)
    training(ctx, ctx.actor)
    # Conditional update: of two concurrent deciders exactly one changes the row (R3).
    result = ctx.session.execute(
        update(Approval)
        .where(col(Approval.id) == approval.id, col(Approval.status) == ApprovalStatus.pending)
        .values(status=status.value, decided_by=ctx.actor, decided_at=ctx.now,
                reason=ctx.vault.seal(reason))
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        ctx.session.refresh(approval)
        raise Refused(f"Already decided: {approval.status} by {mention(str(approval.decided_by))}.",
                      code=RefusalCode.decided)
    ctx.session.refresh(approval)
    reminders.stop(ctx, ReminderKind.approval, approval.id)
    ctx.state("approval.decided", case_id=case.id, approval_id=approval.id, kind=kind.value,
              status=status.value, reason=reason)
    ctx.send(DestinationKind.dm, approval.routed_to, approval_dm(case, approval),
             case_id=case.id)
    if status is not ApprovalStatus.approved:
        # The requester learns who decided and why, privately: the reason is free text and
        # stays out of the channel (§4.3(9)); `/notice show` keeps it too.
        ctx.send(DestinationKind.dm, approval.requested_by, Message(
            title=f"{case.id}: {labels.APPROVAL_KIND_LABELS[approval.kind]} "
            f"{labels.DECISION_LABELS[status].lower()}",
            text=f"{labels.DECISION_LABELS[status]} by {mention(ctx.actor)} on "
            f"{ctx.today.isoformat()}. Reason: {reason}",
            section="§5.1(3)",
            actions=(Action("Show details", ActionValue(ActionId.show_case, case.id)),),
        ), case_id=case.id)
    return approval
