"""Reminders as data: a row per pending nudge with `next_due_at`; sweeps claim due rows, act,
and move `next_due_at` forward (never derive "is it time" from elapsed hours).

- USNCB requests: the officer is reminded in the case thread every N business days, each
  reminder recorded as "no response as of DATE" (§6); after M reminders the FRO is told, after
  more the next approver in the chain.
- Approvals: the approver is reminded after a business day; then the request escalates to the
  next approver in the AOR's chain, who may decide it.
- Training: a DM 30, 7 and 1 days before it expires (§5.3).
- The person's response window (§5.1(6)): the officer is told in the thread, once, when the
  respond-by date has passed.
- A ready case whose use is not recorded: the officer is reminded every N days; after M
  reminders the AOR's FRO is told too, with a button to close it.
All sent within working hours in the recipient's time zone.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.core import access, buttons
from bot.core.context import Ctx
from bot.core.queries import add_no_response
from bot.core.reminders import calendar, next_training_due, zone_of
from bot.messages import Action, ActionId, ActionValue, DestinationKind, Message, mention
from storage.models import (
    Approval,
    ApprovalStatus,
    Case,
    Reminder,
    ReminderKind,
    RequestKind,
    RequestStatus,
    Stage,
    UsncbRequest,
)

STAGE_OF = {RequestKind.validity: Stage.validity, RequestKind.documents: Stage.documents,
            RequestKind.use_authorization: Stage.use_authorization}
KIND_LABEL = {RequestKind.validity: "validity verification",
              RequestKind.documents: "underlying documentation",
              RequestKind.use_authorization: "use authorization"}


# --- the sweep -------------------------------------------------------------------------------


def sweep(ctx: Ctx, *, limit: int = 200) -> int:
    """Act on due reminders in this transaction; returns how many nudges were sent. Rows are
    claimed with FOR UPDATE SKIP LOCKED, so replicas never act on the same reminder."""
    due = ctx.session.exec(
        select(Reminder).where(col(Reminder.active).is_(True), Reminder.next_due_at <= ctx.now)
        .order_by(col(Reminder.next_due_at), col(Reminder.id)).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    sent = 0
    for reminder in due:
        handler = {ReminderKind.usncb_request: _usncb, ReminderKind.approval: _approval,
                   ReminderKind.training: _training,
                   ReminderKind.response_window: _response_window,
                   ReminderKind.ready_outcome: _ready_outcome}[ReminderKind(reminder.kind)]
        sent += handler(ctx, reminder)
        ctx.session.add(reminder)
    return sent


def _outside_hours(ctx: Ctx, reminder: Reminder, zone: str) -> bool:
    """Not now: move to the next working moment without counting a reminder."""
    cal = calendar(ctx.settings)
    if cal.in_working_hours(ctx.now, zone):
        return False
    reminder.next_due_at = cal.next_working_moment(ctx.now, zone)
    return True


def _usncb(ctx: Ctx, reminder: Reminder) -> int:
    request = ctx.session.get(UsncbRequest, int(reminder.ref))
    case = ctx.session.get(Case, reminder.case_id) if reminder.case_id else None
    if (request is None or case is None or request.answer is not None
            or request.status != RequestStatus.sent
            or case.stage != STAGE_OF[RequestKind(request.kind)]):
        reminder.active = False
        return 0
    zone = zone_of(ctx, case.officer)
    if _outside_hours(ctx, reminder, zone):
        return 0
    add_no_response(ctx, request)  # "no response as of DATE" (§6)
    reminder.sent += 1
    kind = RequestKind(request.kind)
    ctx.send(DestinationKind.thread, case.id, Message(
        title=f"Reminder: no USNCB response ({reminder.sent})",
        text=f"{mention(case.officer)}: the {KIND_LABEL[kind]} request sent {request.sent_on} "
             f"has no "
        f"response as of {ctx.today.isoformat()}. Follow up with the USNCB; the lack of a "
        "response is recorded.",
        section="§5.1, §6",
        actions=(Action("Followed up", ActionValue(ActionId.reminder_followed_up, case.id,
                                                   reminder.id)),
                 Action("Snooze a business day",
                        ActionValue(ActionId.reminder_snooze, case.id, reminder.id))),
    ), case_id=case.id)
    chain = access.approver_chain(ctx.session, case.aor_id)
    chain = [user for user in chain if user != case.officer]
    targets: list[str] = []
    if reminder.sent >= ctx.settings.usncb_escalate_after and chain:
        targets.append(chain[0])
    if reminder.sent >= ctx.settings.usncb_escalate_next_after and len(chain) > 1:
        targets.append(chain[1])
    for target in targets:
        ctx.send(DestinationKind.dm, target, Message(
            title=f"Escalation: {case.id} waits on the USNCB",
            text=f"The {KIND_LABEL[kind]} request for {case.id} (AOR {case.aor_id}), sent "
            f"{request.sent_on}, has had no response after {reminder.sent} reminders to "
            f"{mention(case.officer)}.",
            section="§4.2, §6",
            actions=(Action("Show details", ActionValue(ActionId.show_case, case.id)),),
        ), case_id=case.id)
    ctx.state("reminder.sent", case_id=case.id, reminder_id=reminder.id, kind=reminder.kind,
              request_id=request.id, count=reminder.sent, escalated_to=targets)
    reminder.next_due_at = calendar(ctx.settings).after_business_days(
        ctx.now, ctx.settings.usncb_remind_every, zone)
    return 1


def _approval(ctx: Ctx, reminder: Reminder) -> int:
    approval = ctx.session.get(Approval, int(reminder.ref))
    case = ctx.session.get(Case, reminder.case_id) if reminder.case_id else None
    if approval is None or case is None or approval.status != ApprovalStatus.pending:
        reminder.active = False
        return 0
    zone = zone_of(ctx, approval.routed_to)
    if _outside_hours(ctx, reminder, zone):
        return 0
    reminder.sent += 1
    escalate = reminder.sent >= ctx.settings.approval_escalate_after
    chain = [u for u in access.approver_chain(ctx.session, case.aor_id) if u != case.officer]
    target = approval.routed_to
    if escalate and approval.routed_to in chain:
        position = chain.index(approval.routed_to)
        if position + 1 < len(chain):
            target = chain[position + 1]
    ctx.send(DestinationKind.dm, target, Message(
        title=(f"Escalated: approval waiting for {case.id}" if target != approval.routed_to
               else f"Reminder: approval waiting for {case.id}"),
        text=f"{mention(approval.requested_by)} asked on {approval.requested_at.date()} for "
             f"approval "
        f"of {case.id} (AOR {case.aor_id}); it still waits for {mention(approval.routed_to)}.",
        section="§5.1(3), §4.2",
        actions=buttons.decision_actions(approval),
    ), case_id=case.id)
    ctx.state("reminder.sent", case_id=case.id, reminder_id=reminder.id, kind=reminder.kind,
              approval_id=approval.id, count=reminder.sent, to=target)
    reminder.next_due_at = calendar(ctx.settings).after_business_days(
        ctx.now, ctx.settings.approval_remind_after, zone)
    return 1


def _response_window(ctx: Ctx, reminder: Reminder) -> int:
    case = ctx.session.get(Case, reminder.case_id) if reminder.case_id else None
    if case is None or case.stage != Stage.awaiting_response or case.respond_by is None:
        reminder.active = False
        return 0
    if _outside_hours(ctx, reminder, zone_of(ctx, case.officer)):
        return 0
    ctx.send(DestinationKind.thread, case.id, Message(
        title="The person's response window has closed",
        text=f"{mention(case.officer)}: the person could respond until "
             f"{case.respond_by.isoformat()}. "
        "Record the person's response, or that there was none, to go on.",
        section="§5.1(6)",
        actions=(Action("Record the person's response",
                        ActionValue(ActionId.person_response, case.id)),),
    ), case_id=case.id)
    ctx.state("reminder.sent", case_id=case.id, reminder_id=reminder.id, kind=reminder.kind,
              respond_by=case.respond_by)
    reminder.sent += 1
    reminder.active = False  # once: the case stays in its stage until the response is recorded
    return 1


def _ready_outcome(ctx: Ctx, reminder: Reminder) -> int:
    case = ctx.session.get(Case, reminder.case_id) if reminder.case_id else None
    if case is None or case.stage != Stage.ready:
        reminder.active = False
        return 0
    if _outside_hours(ctx, reminder, zone_of(ctx, case.officer)):
        return 0
    reminder.sent += 1
    ctx.send(DestinationKind.thread, case.id, Message(
        title=f"Reminder: record how the notice was used ({reminder.sent})",
        text=f"{mention(case.officer)}: {case.id} has been ready for use since it met the "
             f"threshold "
        "criteria, and its outcome is not recorded. Record how the notice was used (or that it "
        "was not); the case then closes.",
        section="§6",
        actions=(Action("Record how the notice was used",
                        ActionValue(ActionId.record_outcome, case.id)),),
    ), case_id=case.id)
    chain = [u for u in access.approver_chain(ctx.session, case.aor_id) if u != case.officer]
    escalated_to = None
    if reminder.sent > ctx.settings.outcome_escalate_after and chain:
        escalated_to = chain[0]
        ctx.send(DestinationKind.dm, escalated_to, Message(
            title=f"Escalation: outcome of {case.id} not recorded",
            text=f"{case.id} (AOR {case.aor_id}) is ready for use and {mention(case.officer)} "
                 f"has not "
            f"recorded its outcome after {reminder.sent} reminders. You can close it, recording "
            "the outcome and why.",
            section="§4.2, §6",
            actions=(Action("Close case", ActionValue(ActionId.close_case, case.id)),
                     Action("Show details", ActionValue(ActionId.show_case, case.id))),
        ), case_id=case.id)
    ctx.state("reminder.sent", case_id=case.id, reminder_id=reminder.id, kind=reminder.kind,
              count=reminder.sent, escalated_to=escalated_to)
    reminder.next_due_at = ctx.now + timedelta(days=ctx.settings.outcome_remind_days)
    return 1


def _training(ctx: Ctx, reminder: Reminder) -> int:
    user_id = reminder.ref
    status = access.training_status(ctx.session, user_id, today=ctx.today,
                                    validity_days=ctx.settings.training_validity_days)
    if access.person(ctx.session, user_id) is None or status.expires_on is None:
        reminder.active = False
        return 0
    left = (status.expires_on - ctx.today).days
    ctx.send(DestinationKind.dm, user_id, Message(
        title="Your INTERPOL notice training expires soon" if left > 0
        else "Your INTERPOL notice training has expired",
        text=f"Your mandatory training expires on {status.expires_on.isoformat()} "
        f"({left} days). Until it is renewed you cannot open or use a notice case (§5.3).",
        section="§5.3",
    ))
    ctx.state("reminder.sent", reminder_id=reminder.id, kind=reminder.kind, user=user_id,
              expires_on=status.expires_on, days_left=left)
    nxt = next_training_due(ctx, user_id)
    if nxt is None:
        reminder.active = False
    else:
        reminder.next_due_at = nxt
    return 1
