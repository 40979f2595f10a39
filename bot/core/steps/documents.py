"""Step 4 (§5.1(4), §2.1, §4.2(3)): request the underlying documentation via the USNCB (only
after approval and with no indications of misuse), record the answer or its absence, then
review what came: new indications send the case back to doubt."""

from __future__ import annotations

from typing import Any

from bot.core import queries, reminders
from bot.core.buttons import button, delivery, request_status
from bot.core.context import Ctx
from bot.core.errors import FormErrors, Refused
from bot.core.forms import DOCUMENT_KINDS, YES_NO, date_field, justification, options
from bot.core.queries import add_no_response
from bot.core.steps.base import Act, FormInputs, Line, Step, Who
from bot.core.steps.usncb import open_request, record_answer, record_request, sent_fields
from bot.core.transitions import advance, complete
from bot.messages import (
    Action,
    ActionId,
    FieldKind,
    Form,
    FormField,
    FormId,
    Option,
    RefusalCode,
    ShownWhen,
    Style,
)
from storage.models import (
    Case,
    ReminderKind,
    RequestKind,
    RequestStatus,
    ReviewOutcome,
    Stage,
    UsncbRequest,
)


def documents_sent(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    if queries.latest_request(ctx, case.id, RequestKind.documents) is not None:
        raise Refused("The documents request is already recorded.", code=RefusalCode.duplicate)
    record_request(ctx, case, RequestKind.documents, values,
                   {"documents": values["documents"]})


def _documents_allowed(ctx: Ctx, case: Case) -> None:
    """O3, O24, O29: documents only after approval and with no indications of misuse."""
    if not queries.approved(ctx, case):
        raise Refused("§2.1, §5.1(4): underlying documentation is requested only after "
                      "supervisory approval.", code=RefusalCode.approval_first)
    if case.review_outcome != ReviewOutcome.no_indications:
        raise Refused("§2.1, §5.2: documentation is not requested while there are indications "
                      "of misuse.", code=RefusalCode.indications)


def documents_answer(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    apply_documents_answer(ctx, case, open_request(ctx, case, RequestKind.documents, ref),
                           values)


def apply_documents_answer(ctx: Ctx, case: Case, request: UsncbRequest,
                           values: dict[str, Any]) -> None:
    if values["answer"] == "received" and not values["received"]:
        raise FormErrors({"received": "name the documents received"})
    record_answer(ctx, request, values["answer"], values, {"received": values["received"]})


def no_response(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    """§6: the lack of a response is itself recorded, dated."""
    add_no_response(ctx, open_request(ctx, case, RequestKind.documents, ref))


def documents_review(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    request = queries.latest_request(ctx, case.id, RequestKind.documents)
    if request is None or (ref is not None and request.id != ref):
        raise Refused("Record the documents request first.", code=RefusalCode.no_request)
    assert request.id is not None
    received = request.answer == "received"
    silent = bool(queries.no_responses(ctx, request.id))
    if request.answer is None and not silent:
        raise Refused("Record the USNCB's answer, or that there was no response, first.",
                      code=RefusalCode.no_answer)
    errors: dict[str, str] = {}
    if received and values.get("indications") is None:
        errors["indications"] = "review the documents for indications of misuse (§4.3(4))"
    if received and values.get("better_evidence") is None:
        errors["better_evidence"] = "say whether the documents are better evidence (§5.1(4))"
    in_lieu = not (received and values.get("better_evidence"))
    if in_lieu and not values.get("necessity"):
        errors["necessity"] = ("§4.2(2): the notice is used in lieu of the documents only if "
                               "necessary; explain why")
    if errors:
        raise FormErrors(errors)
    if request.answer is None:
        request.status = RequestStatus.no_response
        ctx.session.add(request)
        reminders.stop(ctx, ReminderKind.usncb_request, request.id)
    case.documents_preferred = bool(received and values.get("better_evidence"))
    ctx.state("documents.reviewed", case_id=case.id, received=received,
              indications=values.get("indications"), documents_preferred=case.documents_preferred,
              necessity=values.get("necessity"))
    if received and values.get("indications"):
        # New indications send the case back to §5.2's doubt minimum.
        case.review_outcome = ReviewOutcome.doubt
        complete(ctx, case, Stage.documents, "Documents reviewed: indications found")
        advance(ctx, case, Stage.doubt)
        return
    outcome = ("Documents received and reviewed; they are better evidence and will be used"
               if case.documents_preferred else
               "Documents received and reviewed" if received else
               "No documents received; the USNCB's lack of response is recorded")
    complete(ctx, case, Stage.documents, outcome)
    advance(ctx, case, Stage.use_authorization)


def _sent_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Underlying documentation requested", "§5.1(4)"
    fields = (
        # The request text lists all five: that is the default.
        FormField("documents", "Documents requested", FieldKind.multi_choice,
                  options=options(DOCUMENT_KINDS), initial=tuple(DOCUMENT_KINDS)),
        *sent_fields(given),
    )
    return given.form(title, section, fields, intro)


def _answer_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "USNCB answer on documentation", "§5.1(4), §6"
    fields = (
        FormField("answer", "Answer", FieldKind.choice, options=(
            Option("received", "Documents received"),
            Option("declined", "Declined / none available"),
        )),
        FormField("received", "Documents received", FieldKind.multi_choice,
                  options=options(DOCUMENT_KINDS), initial=given.requested or None,
                  when=ShownWhen("answer", ("received",)),
                  required_message="name the documents received"),
        date_field("answered_on", "Date of the answer", today=given.today),
        FormField("reference", "USNCB reference, if any", required=False),
    )
    return given.form(title, section, fields, intro)


def _review_form(given: FormInputs) -> Form:
    intro = ""
    fields: tuple[FormField, ...]
    title, section = "Review of the underlying documentation", "§5.1(4), §4.2(2)"
    necessity_message = ("§4.2(2): the notice is used in lieu of the documents only if "
                         "necessary; explain why")
    necessity_expects = "why using the notice instead of the documents is necessary"
    if given.received is None:  # nothing came: only why the notice is used instead is asked
        fields = (justification("necessity", "No documents were received: why using the "
                                "notice in lieu of them is necessary", necessity_expects,
                                required_message=necessity_message),)
    else:
        fields = (
            FormField("indications", "Do the documents show indications of misuse or "
                      "non-compliance?", FieldKind.yes_no, options=YES_NO,
                      required_message="review the documents for indications of misuse "
                      "(§4.3(4))"),
            FormField("better_evidence", "Do the documents give better or more complete "
                      "evidence than the notice?", FieldKind.yes_no, options=YES_NO,
                      required_message="say whether the documents are better evidence "
                      "(§5.1(4))"),
            justification("necessity", "The notice will be used in lieu of the documents: "
                          "why that is necessary", necessity_expects,
                          when=ShownWhen("better_evidence", ("no",)),
                          required_message=necessity_message),
        )
    return given.form(title, section, fields, intro)


def prompt(ctx: Ctx, case: Case) -> tuple[str, tuple[Action, ...]]:
    request = queries.latest_request(ctx, case.id, RequestKind.documents)
    if request is None:
        return (
            "Request the underlying documentation (warrant, indictment, charging "
            "documents, conviction documents, police reports) via the USNCB as soon as "
            "practicable.",
            (button("Record documents request sent", ActionId.documents_sent, case,
                    style=Style.primary),),
        )
    text, silent = request_status(ctx, request)
    note, fixes = delivery(case, request)
    text += note
    if request.answer is not None:
        text += f" Answer: {request.answer} ({request.answered_on})."
    actions: tuple[Action, ...] = fixes
    if request.answer is None:
        actions += (
            button("Record answer", ActionId.documents_answer, case, ref=request.id),
            button("Record no response as of today", ActionId.documents_no_response,
                   case, ref=request.id),
        )
    if request.answer is not None or silent:
        actions += (button("Review and decide", ActionId.documents_review, case,
                           ref=request.id, style=Style.primary),)
    return text, actions


def waiting(ctx: Ctx, case: Case) -> bool:
    """Waiting on the USNCB while the request is unanswered."""
    request = queries.latest_request(ctx, case.id, RequestKind.documents)
    return request is not None and request.answer is None


STEP = Step(
    name="Underlying documentation",
    stage=Stage.documents,
    checklist=Line("4", "§5.1(4), §2.1, §4.2(3)"),
    prompt=prompt,
    waiting=waiting,
    acts=(
        Act(ActionId.documents_sent, Who.owner, documents_sent, stages=(Stage.documents,),
            precondition=_documents_allowed, use=True, form=FormId.documents_sent,
            build=_sent_form, request=RequestKind.documents),
        Act(ActionId.documents_answer, Who.owner, documents_answer, stages=(Stage.documents,),
            use=True, form=FormId.documents_answer, build=_answer_form),
        Act(ActionId.documents_no_response, Who.owner, no_response, stages=(Stage.documents,),
            use=True),
        Act(ActionId.documents_review, Who.owner, documents_review, stages=(Stage.documents,),
            leads_to=(Stage.doubt, Stage.use_authorization), use=True,
            form=FormId.documents_review, build=_review_form),
    ),
)
