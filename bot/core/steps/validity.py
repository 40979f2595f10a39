"""Step 1 (§5.1(1)): ask the USNCB whether the notice is active; anything but active closes
the case."""

from __future__ import annotations

from typing import Any

from bot.core import queries
from bot.core.buttons import button, delivery
from bot.core.context import Ctx
from bot.core.errors import Refused
from bot.core.forms import NOTICE_STATUSES, date_field, options
from bot.core.steps.base import Act, FormInputs, Line, Step, Who
from bot.core.steps.usncb import open_request, record_answer, record_request, sent_fields
from bot.core.transitions import advance, close, complete
from bot.messages import Action, ActionId, FieldKind, Form, FormField, FormId, RefusalCode, Style
from storage.models import Case, CloseReason, RequestKind, Stage, UsncbRequest


def validity_sent(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    if queries.latest_request(ctx, case.id, RequestKind.validity) is not None:
        raise Refused("The validity request is already recorded.", code=RefusalCode.duplicate)
    record_request(ctx, case, RequestKind.validity, values, {})


def validity_answer(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    apply_validity_answer(ctx, case, open_request(ctx, case, RequestKind.validity, ref), values)


def apply_validity_answer(ctx: Ctx, case: Case, request: UsncbRequest,
                          values: dict[str, Any]) -> None:
    """§5.1(1): anything but active closes the case. Shared by officers and callbacks."""
    status = values["status"]
    record_answer(ctx, request, status, values)
    if status == "active":
        complete(ctx, case, Stage.validity,
                 f"Active per the USNCB ({values['answered_on'].isoformat()})")
        advance(ctx, case, Stage.review)
    else:
        complete(ctx, case, Stage.validity, f"{status.capitalize()} per the USNCB: unusable")
        close(ctx, case, CloseReason.notice_inactive)


def _sent_form(given: FormInputs) -> Form:
    title, section = ("Send validity request" if given.webhook else "Validity request sent",
                      "§5.1(1)")
    fields = sent_fields(given)
    intro = "Ask the USNCB to confirm the notice is active (not suspended, withdrawn or " \
            "expired)."
    return given.form(title, section, fields, intro)


def _answer_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "USNCB validity answer", "§5.1(1)"
    fields = (
        FormField("status", "Status reported by the USNCB", FieldKind.choice,
                  options=options(NOTICE_STATUSES)),
        date_field("answered_on", "Date of the answer", today=given.today),
        FormField("reference", "USNCB reference, if any", required=False),
    )
    return given.form(title, section, fields, intro)


def prompt(ctx: Ctx, case: Case) -> tuple[str, tuple[Action, ...]]:
    request = queries.latest_request(ctx, case.id, RequestKind.validity)
    if request is None:
        return (
            "First step, always: contact the USNCB to verify the notice is active and has "
            "not been suspended, withdrawn or expired. Record when you sent the request.",
            (button("Record request sent", ActionId.validity_sent, case,
                    style=Style.primary),),
        )
    note, fixes = delivery(case, request)
    return (
        f"Request sent {request.sent_on.isoformat()}.{note} Record the USNCB's answer. "
        "Anything but active closes the case.",
        (*fixes, button("Record answer", ActionId.validity_answer, case, ref=request.id,
                        style=Style.primary)),
    )


def waiting(ctx: Ctx, case: Case) -> bool:
    """Waiting on the USNCB while the request is unanswered."""
    request = queries.latest_request(ctx, case.id, RequestKind.validity)
    return request is not None and request.answer is None


STEP = Step(
    name="Verify validity",
    stage=Stage.validity,
    checklist=Line("1", "§5.1(1)"),
    prompt=prompt,
    waiting=waiting,
    acts=(
        Act(ActionId.validity_sent, Who.owner, validity_sent, stages=(Stage.validity,),
            form=FormId.validity_sent, build=_sent_form, request=RequestKind.validity),
        Act(ActionId.validity_answer, Who.owner, validity_answer, stages=(Stage.validity,),
            leads_to=(Stage.review, Stage.closed), form=FormId.validity_answer,
            build=_answer_form),
    ),
)
