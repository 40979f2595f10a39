"""Step 5 (§5.1(5), §2.2, §4.4): request use authorization via the USNCB for the case's
intended use (OPLA facilitates it for immigration proceedings; DOJ is coordinated with when an
extradition request is pending), then record the answer: denied closes the case."""

from __future__ import annotations

from typing import Any

from bot.core import labels, queries
from bot.core.buttons import button, delivery, request_status
from bot.core.context import Ctx
from bot.core.errors import FormErrors, Refused
from bot.core.forms import INTENDED_USES, date_field, justification
from bot.core.queries import add_no_response
from bot.core.steps.base import Act, FormInputs, Line, Step, Who
from bot.core.steps.usncb import open_request, record_answer, record_request, sent_fields
from bot.core.transitions import close, complete, people_with_role, resume_after, resumes
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
    Option,
    RefusalCode,
    Style,
    mention,
)
from storage.models import (
    Case,
    CloseReason,
    IntendedUse,
    RequestKind,
    Role,
    Stage,
    UsncbRequest,
)


def use_auth_sent(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    if queries.covering_use_request(ctx, case) is not None:
        raise Refused("The use authorization request is already recorded.",
                      code=RefusalCode.duplicate)
    errors: dict[str, str] = {}
    purpose = IntendedUse(values["purpose"])
    if purpose.value != case.intended_use:
        # The case's intended use governs; changing it is its own approved step (§5.1(5)).
        errors["purpose"] = (
            f"the case's intended use is {labels.USE_LABELS[case.intended_use]}; the request "
            "must cover it. To change the intended use, press 'Change intended use' (an "
            "approver decides)")
    if case.extradition_pending and not values.get("doj_coordination"):
        errors["doj_coordination"] = ("an extradition request is pending: record the "
                                      "coordination with DOJ (§2.2, §4.4(2))")
    if errors:
        raise FormErrors(errors)
    record_request(ctx, case, RequestKind.use_authorization, values,
                   {"purpose": purpose.value, "doj_coordination": values.get("doj_coordination")})
    if purpose in (IntendedUse.immigration, IntendedUse.both):
        # §4.4(1): OPLA facilitates use authorization for immigration proceedings.
        message = Message(
            title=f"{case.id}: use authorization for immigration proceedings",
            text=f"{mention(case.officer)} requested use authorization via the USNCB for {case.id} "
            f"(AOR {case.aor_id}) for immigration proceedings. OPLA facilitates this request "
            "(§4.4(1))" + ("; an extradition request is pending: coordinate with DOJ "
                           "(§4.4(2))." if case.extradition_pending else "."),
            section="§4.4",
            actions=(Action("Show details", ActionValue(ActionId.show_case, case.id)),),
        )
        for user_id in people_with_role(ctx, Role.opla):
            ctx.send(DestinationKind.dm, user_id, message, case_id=case.id)


def use_auth_answer(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    request = open_request(ctx, case, RequestKind.use_authorization, ref)
    if values["answer"] == "no_response_proceed":
        purpose = IntendedUse(request.details.get("purpose", case.intended_use))
        if purpose is not IntendedUse.enforcement or case.intended_use != IntendedUse.enforcement:
            raise FormErrors({"answer": "§5.1(5): a notice cannot be introduced or disclosed in "
                              "immigration proceedings without use authorization"})
        assert request.id is not None
        if not queries.no_responses(ctx, request.id):
            add_no_response(ctx, request)
    apply_use_auth_answer(ctx, case, request, values)


def apply_use_auth_answer(ctx: Ctx, case: Case, request: UsncbRequest,
                          values: dict[str, Any]) -> None:
    answer = values["answer"]
    record_answer(ctx, request, answer, values)
    if not queries.covers(request.details.get("purpose"), case.intended_use):
        # An answer to a request made for an earlier intended use: on the record, but it
        # neither authorizes nor ends the use the case has now (§5.1(5)).
        ctx.state("usncb.answer_superseded", case_id=case.id, request_id=request.id,
                  purpose=request.details.get("purpose"), intended_use=case.intended_use)
        return
    if answer == "denied":
        complete(ctx, case, Stage.use_authorization, "Use authorization denied")
        close(ctx, case, CloseReason.use_not_authorized)
        return
    purpose = labels.USE_LABELS[request.details.get("purpose") or case.intended_use]
    label = (f"Use authorization granted for {purpose}" if answer == "granted" else
             "No response to the use authorization request (recorded); enforcement use only")
    complete(ctx, case, Stage.use_authorization, label)
    resume_after(ctx, case, Stage.use_authorization)


def no_response(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    """§6: the lack of a response is itself recorded, dated."""
    add_no_response(ctx, open_request(ctx, case, RequestKind.use_authorization, ref))


def _sent_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Use authorization requested", "§5.1(5), §2.2"
    fields = (
        FormField("purpose", "Purpose", FieldKind.choice, options=INTENDED_USES,
                  initial=given.case.intended_use),
        *sent_fields(given),
        # Asked only when the case says an extradition request is pending.
        *((justification("doj_coordination", "An extradition request is pending: the "
                         "coordination with DOJ", "whom at DOJ you coordinated with and "
                         "what was agreed", required_message="an extradition request is "
                         "pending: record the coordination with DOJ (§2.2, §4.4(2))"),)
          if given.case.extradition_pending else ()),
    )
    return given.form(title, section, fields, intro)


def _answer_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Use authorization answer", "§5.1(5)"
    fields = (
        FormField("answer", "Answer", FieldKind.choice, options=(
            Option("granted", "Granted"),
            Option("denied", "Denied"),
            Option("no_response_proceed", "No response: proceed (enforcement action only)"),
        )),
        date_field("answered_on", "Date of the answer (or of the last follow-up)",
                    today=given.today),
        FormField("reference", "Reference, if any", required=False),
    )
    return given.form(title, section, fields, intro)


def prompt(ctx: Ctx, case: Case) -> tuple[str, tuple[Action, ...]]:
    request = queries.covering_use_request(ctx, case)
    if request is None:
        return (
            f"Request use authorization via the USNCB for {labels.USE_LABELS[case.intended_use]}, "
            "the case's intended use (OPLA facilitates it for immigration proceedings; "
            "coordinate with DOJ if an extradition request is pending).",
            (button("Record use authorization request sent", ActionId.use_auth_sent, case,
                    style=Style.primary),),
        )
    text, _ = request_status(ctx, request)
    note, fixes = delivery(case, request)
    return text + note, (
        *fixes,
        button("Record answer", ActionId.use_auth_answer, case, ref=request.id,
               style=Style.primary),
        button("Record no response as of today", ActionId.use_auth_no_response, case,
               ref=request.id),
    )


def waiting(ctx: Ctx, case: Case) -> bool:
    """Waiting on the USNCB while the request is unanswered."""
    request = queries.latest_request(ctx, case.id, RequestKind.use_authorization)
    return request is not None and request.answer is None


STEP = Step(
    name="Use authorization",
    stage=Stage.use_authorization,
    checklist=Line("5", "§5.1(5), §2.2, §4.4"),
    prompt=prompt,
    waiting=waiting,
    acts=(
        Act(ActionId.use_auth_sent, Who.owner, use_auth_sent, stages=(Stage.use_authorization,),
            use=True, form=FormId.use_auth_sent, build=_sent_form,
            request=RequestKind.use_authorization),
        Act(ActionId.use_auth_answer, Who.owner, use_auth_answer,
            stages=(Stage.use_authorization,),
            leads_to=(Stage.closed, *resumes(Stage.use_authorization)), use=True,
            form=FormId.use_auth_answer, build=_answer_form),
        Act(ActionId.use_auth_no_response, Who.owner, no_response,
            stages=(Stage.use_authorization,), use=True),
    ),
)
