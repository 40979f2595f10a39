"""The case's messages: a root in the channel and one prompt per step in its thread.

Messages are derived from the case's stored state, so the thread always reads as the case's
history: a done step shows its outcome without buttons, the current step carries its buttons.
Only channel-safe facts are used here: ids, enum labels, dates and people. Never subject details
or officers' free text (§4.3(9)).
"""

from __future__ import annotations

from sqlmodel import col, select

from bot.core.context import Ctx
from bot.core.forms import USE_OUTCOMES
from bot.messages import (
    MARK_SYMBOLS,
    Action,
    ActionId,
    ActionValue,
    Confirm,
    DestinationKind,
    Mark,
    Message,
    Style,
    mention,
)
from storage.models import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    ChecklistItem,
    CloseReason,
    Delivery,
    DoubtStep,
    IntendedUse,
    NoticeType,
    RequestKind,
    Stage,
    UsncbNoResponse,
    UsncbRequest,
)

STEPS: tuple[tuple[Stage, str, str], ...] = (
    (Stage.validity, "1. Verify validity", "§5.1(1)"),
    (Stage.review, "2. Preliminary review", "§5.1(2), §5.2, §2.3"),
    (Stage.doubt, "2b. Doubt: confer, research, seek context", "§5.2"),
    (Stage.approval, "3. Supervisory approval", "§5.1(3), §2.1"),
    (Stage.documents, "4. Underlying documentation", "§5.1(4), §2.1, §4.2(3)"),
    (Stage.use_authorization, "5. Use authorization", "§5.1(5), §2.2, §4.4"),
    (Stage.disclosure, "6. Disclosure to the person", "§5.1(6), §4.3(8)"),
    (Stage.awaiting_response, "6b. Waiting for the person's response", "§5.1(6), §4.3(8)"),
    (Stage.representations, "7. Representations and records", "§5.1(7), §4.3(6)"),
)
STAGE_LABELS: dict[str, str] = {
    **{stage.value: title.split(". ", 1)[1] for stage, title, _ in STEPS},
    Stage.ready.value: "Ready for use",
    Stage.closed.value: "Closed",
}
CLOSE_LABELS: dict[str, str] = {
    CloseReason.notice_inactive: "notice not active (suspended, withdrawn or expired): "
    "it cannot be used (§5.1(1))",
    CloseReason.prohibited: "prohibited offense category: must not be used (§5.2)",
    CloseReason.misuse: "material evidence of misuse: must not be used (§5.2)",
    CloseReason.doubt_unresolved: "doubt not resolved: not to be used (§5.2)",
    CloseReason.denied: "supervisory approval denied (§5.1(3))",
    CloseReason.use_not_authorized: "use authorization denied (§5.1(5))",
    CloseReason.withdrawn: "withdrawn by the officer",
    CloseReason.completed: "use of the notice recorded",
}
USE_LABELS: dict[str, str] = {
    IntendedUse.enforcement: "informing an enforcement action",
    IntendedUse.immigration: "immigration proceedings",
    IntendedUse.both: "an enforcement action and immigration proceedings",
}
# The outcome form's labels, read inside a sentence ("Use recorded: it was not used").
OUTCOME_LABELS: dict[str, str] = {k: v[:1].lower() + v[1:] for k, v in USE_OUTCOMES.items()}
DECISION_LABELS: dict[str, str] = {
    ApprovalStatus.pending: "Pending",
    ApprovalStatus.approved: "Approved",
    ApprovalStatus.denied: "Denied",
    ApprovalStatus.returned: "Returned for changes",
    ApprovalStatus.cancelled: "Cancelled",
}
APPROVAL_KIND_LABELS: dict[str, str] = {
    ApprovalKind.use: "supervisory approval",
    ApprovalKind.disclosure_exception: "footnote 2 exception",
    ApprovalKind.use_change: "change of intended use",
}
TYPE_LABELS = {NoticeType.red_notice: "Red Notice", NoticeType.diffusion: "Diffusion"}
REQUEST_LABELS = {RequestKind.validity: "validity", RequestKind.documents: "documentation",
                  RequestKind.use_authorization: "use authorization"}
# Step outcomes that stop the case or set it back (steps.py writes them): they are marked
# adverse, not ticked as if all were well.
ADVERSE_OUTCOMES = ("Suspended per", "Withdrawn per", "Expired per", "Material evidence",
                    "Doubt remains", "Denied", "Use authorization denied",
                    "Documents reviewed: indications found")
# Steps whose outcome someone else gave (the USNCB, the person): the officer recorded it.
DECISION_STEPS = {Stage.approval.value}
ORDER = [stage for stage, _, _ in STEPS]


def step_key(case_id: str, stage: Stage | str) -> str:
    return f"{case_id}:{stage}"


def checklist(ctx: Ctx, case_id: str) -> dict[str, ChecklistItem]:
    items = ctx.session.exec(select(ChecklistItem).where(ChecklistItem.case_id == case_id)).all()
    return {item.step: item for item in items}


def latest_request(ctx: Ctx, case_id: str, kind: RequestKind) -> UsncbRequest | None:
    return ctx.session.exec(
        select(UsncbRequest)
        .where(UsncbRequest.case_id == case_id, UsncbRequest.kind == kind)
        .order_by(col(UsncbRequest.id).desc())
        .limit(1)
    ).first()


def no_responses(ctx: Ctx, request_id: int) -> list[UsncbNoResponse]:
    return list(
        ctx.session.exec(
            select(UsncbNoResponse)
            .where(UsncbNoResponse.request_id == request_id)
            .order_by(col(UsncbNoResponse.as_of))
        ).all()
    )


def covers(purpose: str | None, use: str) -> bool:
    """Whether a use authorization requested for `purpose` covers the intended `use`."""
    return purpose == use or purpose == IntendedUse.both


def covering_use_request(ctx: Ctx, case: Case) -> UsncbRequest | None:
    """The latest use authorization request, if it covers the case's intended use now; a
    request for another use does not count (the intended use governs, §5.1(5))."""
    request = latest_request(ctx, case.id, RequestKind.use_authorization)
    if request is None or not covers(request.details.get("purpose"), case.intended_use):
        return None
    return request


def pending_approval(ctx: Ctx, case_id: str, kind: ApprovalKind) -> Approval | None:
    return ctx.session.exec(
        select(Approval).where(
            Approval.case_id == case_id,
            Approval.kind == kind,
            Approval.status == ApprovalStatus.pending,
        )
    ).first()


def _button(label: str, action: ActionId, case: Case, *, ref: int | None = None,
            style: Style = Style.default) -> Action:
    return Action(label, ActionValue(action, case.id, ref), style)


def titled(mark: Mark, title: str) -> str:
    return f"{MARK_SYMBOLS[mark]} {title}"


def withdraw_confirm(case: Case) -> Confirm:
    return Confirm(title="Withdraw the case?",
                   text=f"{case.id} will be closed as withdrawn. This cannot be undone.",
                   confirm="Withdraw")


def root_message(case: Case) -> Message:
    stage = STAGE_LABELS.get(case.stage, case.stage)
    if case.stage == Stage.closed and case.close_reason:
        stage = f"Closed: {CLOSE_LABELS.get(case.close_reason, case.close_reason)}"
    actions: tuple[Action, ...] = (_button("Show details", ActionId.show_case, case),)
    if case.stage != Stage.closed:
        actions += (_button("Report notice inactive", ActionId.report_inactive, case),)
        if case.stage != Stage.validity:  # once the notice is known to be active
            actions += (_button("Change intended use", ActionId.change_use, case),)
        actions += (Action("Withdraw case", ActionValue(ActionId.withdraw, case.id), Style.danger,
                           withdraw_confirm(case)),)
    return Message(
        title=f"{case.id} · {TYPE_LABELS.get(NoticeType(case.notice_type), case.notice_type)}",
        text="INTERPOL notice case. The checklist of ICE Directive 15006.1 runs in this thread.",
        fields=(
            ("Case", case.id),
            ("AOR", case.aor_id),
            ("Stage", stage),
            ("Officer", f"{mention(case.officer)}"),
        ),
        actions=actions,
        key=step_key(case.id, "root"),
    )


def _current_prompt(ctx: Ctx, case: Case, stage: Stage) -> tuple[str, tuple[Action, ...]]:
    """Instructions and buttons for the step the case is at."""
    if stage is Stage.validity:
        request = latest_request(ctx, case.id, RequestKind.validity)
        if request is None:
            return (
                "First step, always: contact the USNCB to verify the notice is active and has "
                "not been suspended, withdrawn or expired. Record when you sent the request.",
                (_button("Record request sent", ActionId.validity_sent, case,
                         style=Style.primary),),
            )
        note, fixes = _delivery(case, request)
        return (
            f"Request sent {request.sent_on.isoformat()}.{note} Record the USNCB's answer. "
            "Anything but active closes the case.",
            (*fixes, _button("Record answer", ActionId.validity_answer, case, ref=request.id,
                             style=Style.primary)),
        )
    if stage is Stage.review:
        return (
            "Review the notice for signs it is prohibited or non-compliant: offense categories, "
            "the risk indicators, INTERPOL guidance, law-enforcement systems, U.S. Government "
            "reports and public information.",
            (_button("Record preliminary review", ActionId.review, case, style=Style.primary),),
        )
    if stage is Stage.doubt:
        done = doubt_done(ctx, case)
        missing = [k for k in ("confer", "research", "context") if k not in done]
        status = "All three done." if not missing else f"Still to do: {', '.join(missing)}."
        return (
            "There is doubt. At a minimum confer with partner agencies (USNCB, State, DOJ, a "
            "country that may have granted protected status), research the person and offense, "
            "and seek context. Do NOT contact the requesting country's NCB or ask it for "
            f"documents while indications exist. {status}",
            (
                _button("Record what was done", ActionId.doubt_step, case),
                _button("Conclude", ActionId.doubt_resolve, case, style=Style.primary),
            ),
        )
    if stage is Stage.approval:
        pending = pending_approval(ctx, case.id, ApprovalKind.use)
        if pending is not None:
            return (f"Waiting for approval from {mention(pending.routed_to)}.", ())
        if _returned_before(ctx, case):
            return (
                "The approver returned the case for changes (you have the reason by DM and in "
                "/notice show). Request approval again.",
                (_button("Request supervisor approval", ActionId.request_approval, case,
                         style=Style.primary),),
            )
        return (
            "Supervisory approval is needed before any use or disclosure of the notice, and "
            "before underlying documentation is requested.",
            (_button("Request supervisor approval", ActionId.request_approval, case,
                     style=Style.primary),),
        )
    if stage is Stage.documents:
        request = latest_request(ctx, case.id, RequestKind.documents)
        if request is None:
            return (
                "Request the underlying documentation (warrant, indictment, charging "
                "documents, conviction documents, police reports) via the USNCB as soon as "
                "practicable.",
                (_button("Record documents request sent", ActionId.documents_sent, case,
                         style=Style.primary),),
            )
        text, silent = _request_status(ctx, request)
        note, fixes = _delivery(case, request)
        text += note
        if request.answer is not None:
            text += f" Answer: {request.answer} ({request.answered_on})."
        actions: tuple[Action, ...] = fixes
        if request.answer is None:
            actions += (
                _button("Record answer", ActionId.documents_answer, case, ref=request.id),
                _button("Record no response as of today", ActionId.documents_no_response,
                        case, ref=request.id),
            )
        if request.answer is not None or silent:
            actions += (_button("Review and decide", ActionId.documents_review, case,
                                ref=request.id, style=Style.primary),)
        return text, actions
    if stage is Stage.use_authorization:
        request = covering_use_request(ctx, case)
        if request is None:
            return (
                f"Request use authorization via the USNCB for {USE_LABELS[case.intended_use]}, "
                "the case's intended use (OPLA facilitates it for immigration proceedings; "
                "coordinate with DOJ if an extradition request is pending).",
                (_button("Record use authorization request sent", ActionId.use_auth_sent, case,
                         style=Style.primary),),
            )
        text, _ = _request_status(ctx, request)
        note, fixes = _delivery(case, request)
        return text + note, (
            *fixes,
            _button("Record answer", ActionId.use_auth_answer, case, ref=request.id,
                    style=Style.primary),
            _button("Record no response as of today", ActionId.use_auth_no_response, case,
                    ref=request.id),
        )
    if stage is Stage.disclosure:
        pending = pending_approval(ctx, case.id, ApprovalKind.disclosure_exception)
        if pending is not None:
            return (f"Footnote 2 exception waiting for sign-off from "
                    f"{mention(pending.routed_to)}.", ())
        return (
            "Provide the person with the underlying documents received and a meaningful, "
            "recorded time to respond or contest; or record the footnote 2 exception.",
            (
                _button("Record documents provided", ActionId.disclosure, case,
                        style=Style.primary),
                _button("Footnote 2 exception", ActionId.disclosure_exception, case),
            ),
        )
    if stage is Stage.awaiting_response:
        respond_by = case.respond_by.isoformat() if case.respond_by else "the respond-by date"
        return (
            f"The person may respond or contest until {respond_by}. The case waits until then, "
            "unless the person's response is recorded earlier; a contest that raises "
            "indications sends the case back to the preliminary review.",
            (_button("Record the person's response", ActionId.person_response, case,
                     style=Style.primary),),
        )
    if stage is Stage.representations:
        return (
            "A notice is not a U.S. arrest warrant and conveys no authority. Document any "
            "arrest on its immigration grounds; on Form I-213 note 'foreign fugitive' and do "
            "not cite the notice.",
            (_button("Acknowledge and finish", ActionId.representations, case,
                     style=Style.primary),),
        )
    return "", ()


def _delivery(case: Case, request: UsncbRequest) -> tuple[str, tuple[Action, ...]]:
    """How a webhook request is travelling, and what the officer can do if it failed."""
    if request.delivery in (Delivery.pending, Delivery.sending):
        return " Sending it to the USNCB liaison system…", ()
    if request.delivery == Delivery.delivered:
        return f" Delivered to the USNCB liaison system ({request.external_id}).", ()
    if request.delivery == Delivery.failed and request.answer is None:
        return (
            f" NOT DELIVERED to the USNCB liaison system ({request.delivery_error}).",
            (_button("Retry sending", ActionId.retry_delivery, case, ref=request.id,
                     style=Style.primary),
             _button("Send it manually instead", ActionId.switch_manual, case, ref=request.id)),
        )
    return "", ()


def _request_status(ctx: Ctx, request: UsncbRequest) -> tuple[str, list[UsncbNoResponse]]:
    """'Requested DATE. No response as of DATE.' and the no-response entries behind it."""
    silent = no_responses(ctx, request.id) if request.id is not None else []
    text = f"Requested {request.sent_on.isoformat()}."
    if silent:
        text += f" No response as of {silent[-1].as_of.isoformat()}."
    return text, silent


def doubt_done(ctx: Ctx, case: Case) -> set[str]:
    """The §5.2 steps recorded in the case's current round of doubt."""
    rows = ctx.session.exec(select(DoubtStep.kind).where(
        DoubtStep.case_id == case.id, DoubtStep.doubt_round == case.doubt_round)).all()
    return set(rows)


def _returned_before(ctx: Ctx, case: Case) -> bool:
    return ctx.session.exec(select(Approval.id).where(
        Approval.case_id == case.id, Approval.status == ApprovalStatus.returned)).first() \
        is not None


def _waiting(ctx: Ctx, case: Case, stage: Stage) -> bool:
    """Whether the current step waits on someone other than the officer."""
    if stage in (Stage.approval, Stage.disclosure):
        kind = ApprovalKind.use if stage is Stage.approval else ApprovalKind.disclosure_exception
        return pending_approval(ctx, case.id, kind) is not None
    if stage is Stage.awaiting_response:  # on the person, until the respond-by date
        return case.respond_by is not None and ctx.today <= case.respond_by
    kind_of = {Stage.validity: RequestKind.validity, Stage.documents: RequestKind.documents,
               Stage.use_authorization: RequestKind.use_authorization}
    if stage not in kind_of:
        return False
    request = latest_request(ctx, case.id, kind_of[stage])
    return request is not None and request.answer is None


def done_text(stage: str, item: ChecklistItem) -> str:
    """A done step's line. A decision is credited to whoever made it; every other outcome
    (the USNCB's answer, the person's time to respond) to the one who recorded it."""
    outcome = item.outcome or "Done"
    if not item.done_by:
        return f"{outcome}."
    if f"{mention(item.done_by)}" in outcome:  # the outcome already names who
        return f"{outcome}."
    when = f" on {item.done_at.date().isoformat()}" if item.done_at else ""
    if stage in DECISION_STEPS:
        return f"{outcome} by {mention(item.done_by)}."
    return f"{outcome}. Recorded by {mention(item.done_by)}{when}."


def current_step(ctx: Ctx, case: Case) -> Message | None:
    """The message of the step the case is at, with its buttons; None when it has none."""
    for stage, title, section in STEPS:
        if case.stage == stage.value:
            text, actions = _current_prompt(ctx, case, stage)
            mark = Mark.waiting if _waiting(ctx, case, stage) else Mark.current
            return Message(title=titled(mark, title), text=text, section=section,
                           actions=actions, key=step_key(case.id, stage), mark=mark)
    return None


def step_messages(ctx: Ctx, case: Case) -> list[Message]:
    items = checklist(ctx, case.id)
    messages: list[Message] = []
    for stage, title, section in STEPS:
        item = items.get(stage.value)
        key = step_key(case.id, stage)
        if item is not None and item.done:
            adverse = (item.outcome or "").startswith(ADVERSE_OUTCOMES)
            mark = Mark.adverse if adverse else Mark.good
            messages.append(Message(
                title=titled(mark, title), text=done_text(stage.value, item), section=section,
                key=key, mark=mark,
            ))
        elif case.stage == stage.value:
            current = current_step(ctx, case)
            assert current is not None
            messages.append(current)
        elif item is not None and case.stage == Stage.closed:
            messages.append(Message(title=titled(Mark.skipped, title), text="Not completed: "
                                    "the case is closed.", section=section, key=key,
                                    mark=Mark.skipped))
        elif item is not None and item.outcome:  # sent back: why this step waits
            messages.append(Message(title=titled(Mark.reopened, title), text=f"{item.outcome}.",
                                    section=section, key=key, mark=Mark.reopened))
    if case.stage == Stage.ready:
        messages.append(Message(
            mark=Mark.good,
            title="✅ Threshold criteria met",
            text="All steps of §5.1 are recorded. The notice may inform the intended use, "
            "never as its sole basis (§2)."
            + (" Prioritize the underlying documentation: it is better evidence (§5.1(4))."
               if case.documents_preferred else "")
            + f" Cleared for {USE_LABELS[case.intended_use]}. When the notice has been used, or "
            "will not be, record how: the case then closes.",
            section="§2, §5.1, §6",
            actions=(_button("Record how the notice was used", ActionId.record_outcome, case,
                             style=Style.primary),),
            key=step_key(case.id, "final"),
        ))
    if case.stage == Stage.closed and case.close_reason:
        text = CLOSE_LABELS.get(case.close_reason, case.close_reason).capitalize() + "."
        if case.close_reason == CloseReason.completed and case.use_outcome:
            text = (f"Use recorded: {OUTCOME_LABELS[case.use_outcome]}"
                    + (f" ({case.used_on.isoformat()})" if case.used_on else "") + ".")
        # Withdrawn by the officer is an ending, not a finding against the notice; a recorded
        # use is the case's good end.
        mark = (Mark.skipped if case.close_reason == CloseReason.withdrawn
                else Mark.good if case.close_reason == CloseReason.completed else Mark.adverse)
        messages.append(Message(
            mark=mark,
            title=titled(mark, "Case closed"),
            text=text,
            section="§5.1, §5.2",
            key=step_key(case.id, "final"),
        ))
    return messages


def sync(ctx: Ctx, case: Case) -> None:
    """Queue the root and thread messages whose content changed since they were last queued."""
    ctx.send(DestinationKind.channel, case.channel, root_message(case), case_id=case.id)
    for message in step_messages(ctx, case):
        ctx.send(DestinationKind.thread, case.id, message, case_id=case.id)


def decision_actions(approval: Approval) -> tuple[Action, ...]:
    """The approver's buttons for a pending approval (its DM and App Home)."""
    case_id = approval.case_id
    pairs: tuple[tuple[ActionId, str, Style, Confirm | None], ...]
    if approval.kind == ApprovalKind.use:
        pairs = (
            (ActionId.approve, "Approve", Style.primary, Confirm(
                title="Approve use?", confirm="Approve",
                text=f"You approve using the notice of {case_id} and requesting its "
                "underlying documentation (§5.1(3)). This is recorded in your name.")),
            (ActionId.return_for_changes, "Return for changes", Style.default, None),
            (ActionId.deny, "Deny", Style.danger, Confirm(
                title="Deny use?", confirm="Deny",
                text=f"You will be asked for the reason; {case_id} will then be closed.")),
        )
    elif approval.kind == ApprovalKind.use_change:
        pairs = ((ActionId.approve_use_change, "Approve change", Style.primary, Confirm(
                     title="Approve the change?", confirm="Approve",
                     text=f"The intended use of {case_id} changes; this is recorded in your "
                     "name.")),
                 (ActionId.refuse_use_change, "Refuse change", Style.danger, None))
    else:
        pairs = ((ActionId.sign_off_exception, "Sign off", Style.primary, None),
                 (ActionId.refuse_exception, "Refuse", Style.danger, None))
    decisions = [Action(label, ActionValue(action, case_id, approval.id), style, confirm)
                 for action, label, style, confirm in pairs]
    return (*decisions, Action("Show details", ActionValue(ActionId.show_case, approval.case_id)))
