"""Step 6 (§5.1(6), §4.3(8)): give the person the documents received and a meaningful time to
respond, or, under footnote 2, record why notifying them would jeopardize law enforcement (an
approver signs it off)."""

from __future__ import annotations

from typing import Any

from bot.core import queries, reminders
from bot.core.buttons import button
from bot.core.context import Ctx
from bot.core.errors import FormErrors, Refused
from bot.core.forms import DATE_HINT, DOCUMENT_KINDS, date_field, justification
from bot.core.steps.approvals import decide, route
from bot.core.steps.base import Act, FormInputs, Line, Step, Who
from bot.core.transitions import advance, complete, not_future
from bot.messages import (
    Action,
    ActionId,
    FieldKind,
    Form,
    FormField,
    FormId,
    RefusalCode,
    Style,
    mention,
)
from storage.models import ApprovalKind, ApprovalStatus, Case, Stage


def disclosure(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    not_future(values, "provided_on", today=ctx.today)
    if values["respond_by"] <= values["provided_on"]:
        raise FormErrors({"respond_by": "give the person a meaningful time to respond: a date "
                          "after the documents were provided"})
    if queries.pending_approval(ctx, case.id, ApprovalKind.disclosure_exception) is not None:
        raise Refused("A footnote 2 exception is waiting for sign-off.", code=RefusalCode.pending)
    ctx.state("disclosure.provided", case_id=case.id, provided_on=values["provided_on"],
              respond_by=values["respond_by"], provided=values["provided"])
    complete(ctx, case, Stage.disclosure,
             f"Documents provided {values['provided_on'].isoformat()}; the person may respond "
             f"until {values['respond_by'].isoformat()}")
    # §5.1(6): the opportunity to respond is real only if the case waits for it.
    case.respond_by = values["respond_by"]
    advance(ctx, case, Stage.awaiting_response)
    reminders.on_response_window(ctx, case)


def disclosure_exception(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    if queries.pending_approval(ctx, case.id, ApprovalKind.disclosure_exception) is not None:
        raise Refused("A footnote 2 exception is already waiting for sign-off.",
                      code=RefusalCode.pending)
    route(ctx, case, ApprovalKind.disclosure_exception, values["justification"])


def sign_off_exception(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    decide(ctx, case, ref, ApprovalKind.disclosure_exception, ApprovalStatus.approved)
    complete(ctx, case, Stage.disclosure,
             "Footnote 2 exception: advance disclosure would jeopardize law enforcement; "
             "signed off")
    advance(ctx, case, Stage.representations)


def refuse_exception(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    decide(ctx, case, ref, ApprovalKind.disclosure_exception, ApprovalStatus.denied,
            values["reason"])


def _disclosure_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Documents provided to the person", "§5.1(6), §4.3(8)"
    fields = (
        date_field("provided_on", "Date provided", today=given.today),
        FormField("provided", "What was provided", FieldKind.long_text, max_length=2000,
                  initial="; ".join(DOCUMENT_KINDS.get(k, k) for k in given.received or ())
                  or None),
        FormField("respond_by", "The person may respond or contest until", FieldKind.date,
                  hint=DATE_HINT),
    )
    return given.form(title, section, fields, intro)


def _exception_form(given: FormInputs) -> Form:
    title, section = "Footnote 2 exception", "§4.3(8) fn. 2"
    intro = "Only if notifying the person would jeopardize law enforcement or prosecutorial " \
            "responsibilities. A supervisor must sign off."
    fields = (justification("justification", "Justification",
                            "how notifying the person would jeopardize law enforcement "
                            "or prosecutorial responsibilities"),)
    return given.form(title, section, fields, intro)


def _refuse_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Refuse the exception", "§4.3(8) fn. 2"
    fields = (justification("reason", "Reason", "why the person must be given the "
                            "documents and time to respond"),)
    return given.form(title, section, fields, intro)


def prompt(ctx: Ctx, case: Case) -> tuple[str, tuple[Action, ...]]:
    pending = queries.pending_approval(ctx, case.id, ApprovalKind.disclosure_exception)
    if pending is not None:
        return (f"Footnote 2 exception waiting for sign-off from "
                f"{mention(pending.routed_to)}.", ())
    return (
        "Provide the person with the underlying documents received and a meaningful, "
        "recorded time to respond or contest; or record the footnote 2 exception.",
        (
            button("Record documents provided", ActionId.disclosure, case,
                   style=Style.primary),
            button("Footnote 2 exception", ActionId.disclosure_exception, case),
        ),
    )


def waiting(ctx: Ctx, case: Case) -> bool:
    """Waiting on the approver while a footnote 2 exception is pending."""
    return queries.pending_approval(ctx, case.id, ApprovalKind.disclosure_exception) is not None


STEP = Step(
    name="Disclosure to the person",
    stage=Stage.disclosure,
    checklist=Line("6", "§5.1(6), §4.3(8)"),
    prompt=prompt,
    waiting=waiting,
    acts=(
        Act(ActionId.disclosure, Who.owner, disclosure, stages=(Stage.disclosure,),
            leads_to=(Stage.awaiting_response,), use=True, form=FormId.disclosure,
            build=_disclosure_form),
        Act(ActionId.disclosure_exception, Who.owner, disclosure_exception,
            stages=(Stage.disclosure,), use=True, form=FormId.disclosure_exception,
            build=_exception_form),
        Act(ActionId.sign_off_exception, Who.approver, sign_off_exception,
            stages=(Stage.disclosure,), leads_to=(Stage.representations,)),
        Act(ActionId.refuse_exception, Who.approver, refuse_exception,
            stages=(Stage.disclosure,), form=FormId.refuse_exception, build=_refuse_form),
    ),
)
