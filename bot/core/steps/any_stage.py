"""Actions open at any stage of an open case: report the notice inactive (§5.1(1)), withdraw
the case, change its intended use (an approver decides, §5.1(5), §4.4(1)), and hand a case
whose officer left the roster to another officer (§5.3, §4.3)."""

from __future__ import annotations

from typing import Any

from bot.core import access, labels, queries, reminders
from bot.core.context import Ctx
from bot.core.errors import FormErrors, Refused
from bot.core.forms import INTENDED_USES, NOTICE_STATUSES, justification, options
from bot.core.steps.approvals import decide, route
from bot.core.steps.base import Act, FormInputs, Step, Who
from bot.core.transitions import advance, close, reopen, require_open, training
from bot.messages import (
    Action,
    ActionId,
    ActionValue,
    DestinationKind,
    FieldKind,
    Form,
    FormField,
    FormId,
    Message,
    RefusalCode,
    mention,
)
from storage.models import (
    ApprovalKind,
    ApprovalStatus,
    Case,
    ChecklistItem,
    CloseReason,
    IntendedUse,
    ReminderKind,
    RequestKind,
    Role,
    Stage,
)

# Where an approved change of intended use sends a case past the use authorization.
AFTER_USE_AUTHORIZATION = (Stage.disclosure, Stage.awaiting_response, Stage.representations,
                           Stage.ready)


def report_inactive(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    ctx.state("notice.inactive", case_id=case.id, status=values["status"], note=values["note"])
    close(ctx, case, CloseReason.notice_inactive)


def withdraw(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    ctx.state("case.withdrawn", case_id=case.id, reason=values["reason"])
    close(ctx, case, CloseReason.withdrawn)


def change_use(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    wanted = IntendedUse(values["intended_use"])
    if wanted.value == case.intended_use:
        raise FormErrors({"intended_use": "that is already the case's intended use"})
    if queries.pending_approval(ctx, case.id, ApprovalKind.use_change) is not None:
        raise Refused("A change of intended use is already waiting for a decision.",
                      code=RefusalCode.pending)
    route(ctx, case, ApprovalKind.use_change, values["reason"], requested_use=wanted)


def approve_use_change(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    """The new intended use holds from now on. A case past the use authorization whose request
    does not cover the new use goes back to that step for a new request (and, for immigration
    proceedings, a grant); the acknowledgment at the end is given again."""
    approval = decide(ctx, case, ref, ApprovalKind.use_change, ApprovalStatus.approved)
    previous, case.intended_use = case.intended_use, IntendedUse(
        approval.requested_use or case.intended_use)
    ctx.session.add(case)
    ctx.state("case.intended_use_changed", case_id=case.id, previous=previous,
              intended_use=case.intended_use, approval_id=approval.id)
    if queries.covering_use_request(ctx, case) is None:
        stale = queries.latest_request(ctx, case.id, RequestKind.use_authorization)
        if stale is not None and stale.answer is None:
            reminders.stop(ctx, ReminderKind.usncb_request, stale.id)
        if case.stage in {s.value for s in AFTER_USE_AUTHORIZATION}:
            for stage in (Stage.use_authorization, Stage.representations):
                item = ctx.session.get(ChecklistItem, (case.id, stage.value))
                if item is not None:
                    reopen(ctx, item)
            reminders.stop(ctx, ReminderKind.ready_outcome, case.id)
            advance(ctx, case, Stage.use_authorization)


def refuse_use_change(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    decide(ctx, case, ref, ApprovalKind.use_change, ApprovalStatus.denied, values["reason"])


def reassign(ctx: Ctx, case: Case, new_officer: str) -> None:
    """§5.3, §4.3: a case whose officer left the roster (or lost the officer role) is handed by
    the AOR's FRO or designee to another officer of the AOR with current training; the new
    officer is told. Until then the managers' digest flags the case."""
    access.require_person(ctx.session, ctx.actor)
    access.require_approver(ctx.session, case, ctx.actor, today=ctx.today)
    require_open(case)
    if access.officer_present(ctx.session, case):
        raise Refused(f"{mention(case.officer)} is still an officer on the roster: only a "
                      f"case whose "
                      "officer left it is reassigned.", code=RefusalCode.officer_active)
    target = access.person(ctx.session, new_officer)
    if target is None:
        raise Refused(f"{mention(new_officer)} is not on the roster.",
                      code=RefusalCode.not_on_roster)
    if Role.officer.value not in access.roles_of(ctx.session, new_officer):
        raise Refused(f"{mention(new_officer)} does not have the officer role.",
                      code=RefusalCode.role)
    if target.aor_id != case.aor_id:
        raise Refused(f"{mention(new_officer)} is not an officer of AOR {case.aor_id}.",
                      code=RefusalCode.aor)
    training(ctx, new_officer)
    previous = case.officer
    case.officer = new_officer
    ctx.session.add(case)
    ctx.state("case.reassigned", case_id=case.id, previous=previous, officer=new_officer)
    ctx.send(DestinationKind.dm, new_officer, Message(
        title=f"{case.id} reassigned to you",
        text=f"{mention(ctx.actor)} reassigned case {case.id} (AOR {case.aor_id}, at "
        f"'{labels.STAGE_LABELS.get(case.stage, case.stage)}') to you: {mention(previous)} is no "
        "longer an officer on the roster. Carry on with the checklist in the case thread.",
        section="§5.3, §4.3",
        actions=(Action("Show details", ActionValue(ActionId.show_case, case.id)),),
    ), case_id=case.id)


def _inactive_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Notice no longer active", "§5.1(1)"
    fields = (
        FormField("status", "Status", FieldKind.choice, options=options(
            {k: v for k, v in NOTICE_STATUSES.items() if k != "active"})),
        FormField("note", "Source of the information", FieldKind.long_text,
                  max_length=2000),
    )
    return given.form(title, section, fields, intro)


def _withdraw_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Withdraw the case", ""
    fields = (FormField("reason", "Reason", FieldKind.long_text, max_length=2000),)
    return given.form(title, section, fields, intro)


def _change_form(given: FormInputs) -> Form:
    title, section = "Change intended use", "§5.1(5), §4.4(1)"
    intro = "An approver decides the change. Use in immigration proceedings needs a " \
            "granted use authorization, facilitated by OPLA."
    fields = (
        FormField("intended_use", "New intended use", FieldKind.choice,
                  options=INTENDED_USES, initial=given.case.intended_use),
        justification("reason", "Why the intended use changes",
                      "why the notice is now to be used differently"),
    )
    return given.form(title, section, fields, intro)


def _refuse_change_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Refuse the change of intended use", "§5.1(5)"
    fields = (justification("reason", "Reason",
                            "why the intended use may not change"),)
    return given.form(title, section, fields, intro)


STEP = Step(
    name="At any stage",
    acts=(
        Act(ActionId.report_inactive, Who.owner_or_approver, report_inactive,
            leads_to=(Stage.closed,), form=FormId.report_inactive, build=_inactive_form),
        Act(ActionId.withdraw, Who.owner_or_approver, withdraw, leads_to=(Stage.closed,),
            form=FormId.withdraw, build=_withdraw_form),
        Act(ActionId.change_use, Who.owner, change_use, form=FormId.change_use,
            build=_change_form),
        Act(ActionId.approve_use_change, Who.approver, approve_use_change,
            leads_to=(Stage.use_authorization,), moves_from=AFTER_USE_AUTHORIZATION),
        Act(ActionId.refuse_use_change, Who.approver, refuse_use_change,
            form=FormId.refuse_use_change, build=_refuse_change_form),
    ),
)
