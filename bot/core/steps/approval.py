"""Step 3 (§5.1(3), §2.1): supervisory approval before any use or disclosure and before the
documents are requested. The approver approves (the case resumes at the first later step not
done), returns it for changes (back to the review) or denies it (the case closes)."""

from __future__ import annotations

from typing import Any

from bot.core import access, queries
from bot.core.buttons import button
from bot.core.context import Ctx
from bot.core.errors import Refused
from bot.core.forms import justification
from bot.core.steps.approvals import decide, route
from bot.core.steps.base import Act, FormInputs, Line, Step, Who
from bot.core.transitions import close, complete, resume_after, resumes, send_back
from bot.messages import Action, ActionId, Form, FormId, RefusalCode, Style, mention
from storage.models import ApprovalKind, ApprovalStatus, Case, CloseReason, Stage


def _review_done(ctx: Ctx, case: Case) -> None:
    """Asked before the guard: the officer learns the review comes first."""
    access.require_owner(case, ctx.actor)
    if case.stage in (Stage.validity.value, Stage.review.value, Stage.doubt.value):
        raise Refused(
            "§5.1(2): the preliminary review (and any doubt) must be completed before "
            "supervisory approval is sought.",
            code=RefusalCode.review_first,
        )


def request_approval(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    if queries.pending_approval(ctx, case.id, ApprovalKind.use) is not None:
        raise Refused("Approval has already been requested.", code=RefusalCode.duplicate)
    route(ctx, case, ApprovalKind.use)


def approve(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    decide(ctx, case, ref, ApprovalKind.use, ApprovalStatus.approved)
    # The thread credits the decider (thread.done_text: "Approved (date) by @approver").
    complete(ctx, case, Stage.approval, f"Approved ({ctx.today.isoformat()})")
    resume_after(ctx, case, Stage.approval)


def deny(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    """Final: the case closes. The officer is told who decided and why."""
    decide(ctx, case, ref, ApprovalKind.use, ApprovalStatus.denied, values["reason"])
    complete(ctx, case, Stage.approval,
             f"Denied by {mention(ctx.actor)} ({ctx.today.isoformat()}); the officer has the "
             f"reason, "
             "also in /notice show")
    close(ctx, case, CloseReason.denied)


def return_for_changes(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    """Not a denial: the case goes back to the preliminary review, the officer gets the reason
    and asks again once the review is redone."""
    approval = decide(ctx, case, ref, ApprovalKind.use, ApprovalStatus.returned,
                      values["reason"])
    ctx.state("approval.returned", case_id=case.id, approval_id=approval.id,
              reason=values["reason"])
    send_back(ctx, case, Stage.approval, to=Stage.review,
              why=f"Returned for changes by {mention(ctx.actor)} ({ctx.today.isoformat()}); "
              "the officer has the reason")


def _deny_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Deny use of the notice", "§5.1(3)"
    fields = (justification("reason", "Reason for denial",
                            "why the notice may not be used"),)
    return given.form(title, section, fields, intro)


def _return_form(given: FormInputs) -> Form:
    title, section = "Return for changes", "§5.1(2), §5.1(3)"
    intro = "The case goes back to the preliminary review; the officer gets your reason."
    fields = (justification("reason", "What must change",
                            "what the preliminary review must address before approval"),)
    return given.form(title, section, fields, intro)


def prompt(ctx: Ctx, case: Case) -> tuple[str, tuple[Action, ...]]:
    pending = queries.pending_approval(ctx, case.id, ApprovalKind.use)
    if pending is not None:
        return (f"Waiting for approval from {mention(pending.routed_to)}.", ())
    if queries.returned_before(ctx, case):
        return (
            "The approver returned the case for changes (you have the reason by DM and in "
            "/notice show). Request approval again.",
            (button("Request supervisor approval", ActionId.request_approval, case,
                    style=Style.primary),),
        )
    return (
        "Supervisory approval is needed before any use or disclosure of the notice, and "
        "before underlying documentation is requested.",
        (button("Request supervisor approval", ActionId.request_approval, case,
                style=Style.primary),),
    )


def waiting(ctx: Ctx, case: Case) -> bool:
    """Waiting on the approver while a request is pending."""
    return queries.pending_approval(ctx, case.id, ApprovalKind.use) is not None


STEP = Step(
    name="Supervisory approval",
    stage=Stage.approval,
    checklist=Line("3", "§5.1(3), §2.1"),
    prompt=prompt,
    waiting=waiting,
    acts=(
        Act(ActionId.request_approval, Who.owner, request_approval, stages=(Stage.approval,),
            before=_review_done),
        Act(ActionId.approve, Who.approver, approve, stages=(Stage.approval,),
            leads_to=resumes(Stage.approval)),
        Act(ActionId.deny, Who.approver, deny, stages=(Stage.approval,),
            leads_to=(Stage.closed,), form=FormId.deny, build=_deny_form),
        Act(ActionId.return_for_changes, Who.approver, return_for_changes,
            stages=(Stage.approval,), leads_to=(Stage.review,), form=FormId.return_for_changes,
            build=_return_form),
    ),
)
