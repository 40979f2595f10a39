"""What the three USNCB requests share (validity, documents, use authorization): recording a
request, finding the open one, recording an answer, and the two fixes for a webhook request
that was not delivered (retry, or send it by hand): actions open at any stage of a request."""

from __future__ import annotations

from typing import Any

from bot.core import queries, reminders
from bot.core.context import Ctx
from bot.core.errors import FormErrors, Refused
from bot.core.forms import usncb_sent_fields
from bot.core.queries import indications_exist
from bot.core.steps.base import Act, FormInputs, Step, Who
from bot.core.transitions import not_future, require_stage
from bot.messages import ActionId, Form, FormField, FormId, RefusalCode
from config.settings import UsncbChannelKind
from storage.models import (
    Case,
    Delivery,
    ReminderKind,
    RequestKind,
    RequestStatus,
    Stage,
    UsncbRequest,
)

STAGE_OF_REQUEST = {RequestKind.validity: Stage.validity, RequestKind.documents: Stage.documents,
                    RequestKind.use_authorization: Stage.use_authorization}


def sent_fields(given: FormInputs) -> tuple[FormField, ...]:
    """When and how the officer sent a request; nothing to ask when noticebot sends it."""
    return () if given.webhook else usncb_sent_fields(given.today, given.method)


def refuse_requesting_ncb(ctx: Ctx, case: Case) -> None:
    """The tip-off guard (§5.2, O29): no contact with the requesting country's NCB while
    indications of misuse exist. Surfaces never offer it; a crafted request lands here."""
    if indications_exist(case) or case.review_outcome is None:
        raise Refused(
            "§5.2: while there are indications the notice may be prohibited or non-compliant, "
            "do not notify the requesting country or ask it for documents: it could alert it to "
            "the person's location. Confer through the USNCB, State or DOJ instead.",
            code=RefusalCode.tip_off,
        )


def record_request(ctx: Ctx, case: Case, kind: RequestKind, values: dict[str, Any],
                   details: dict[str, Any]) -> UsncbRequest:
    if kind is not RequestKind.validity and indications_exist(case):
        refuse_requesting_ncb(ctx, case)  # defence in depth: the stage guards come first
    webhook = ctx.settings.usncb_channel is UsncbChannelKind.webhook
    if not webhook:
        not_future(values, "sent_on", today=ctx.today)
    request = UsncbRequest(
        case_id=case.id, kind=kind, sent_by=ctx.actor, details=details,
        sent_on=ctx.today if webhook else values["sent_on"],
        method="webhook" if webhook else values["method"],
        reference="" if webhook else values.get("reference") or "",
        channel=UsncbChannelKind.webhook.value if webhook else UsncbChannelKind.manual.value,
        delivery=Delivery.pending.value if webhook else None,
        recorded_at=ctx.now,
    )
    ctx.session.add(request)
    ctx.session.flush()
    request.external_id = f"NB-{case.id}-{request.id}"
    ctx.session.add(request)
    reminders.on_request(ctx, case, request)
    ctx.state("usncb.request_queued" if webhook else "usncb.request_sent", case_id=case.id,
              request_id=request.id, external_id=request.external_id, kind=kind.value,
              sent_on=request.sent_on, channel=request.channel, details=details)
    return request


def open_request(ctx: Ctx, case: Case, kind: RequestKind, ref: int | None) -> UsncbRequest:
    request = queries.latest_request(ctx, case.id, kind)
    if request is None:
        raise Refused("Record that the request was sent to the USNCB first.",
                      code=RefusalCode.no_request)
    if ref is not None and request.id != ref:
        raise Refused("That request has been superseded.", code=RefusalCode.stale)
    if request.answer is not None:
        raise Refused("The answer to this request is already recorded.", code=RefusalCode.answered)
    return request


def record_answer(ctx: Ctx, request: UsncbRequest, answer: str, values: dict[str, Any],
                  details: dict[str, Any] | None = None) -> None:
    not_future(values, "answered_on", today=ctx.today)
    if values["answered_on"] < request.sent_on:
        raise FormErrors({"answered_on": "cannot be before the request was sent "
                          f"({request.sent_on.isoformat()})"})
    request.answer, request.answered_on, request.answered_by = answer, values["answered_on"], \
        ctx.actor
    request.answer_reference = values.get("reference") or ""
    request.answer_details = details or {}
    request.status = RequestStatus.answered
    ctx.session.add(request)
    reminders.stop(ctx, ReminderKind.usncb_request, request.id)
    ctx.state("usncb.answer", case_id=request.case_id, request_id=request.id,
              kind=request.kind, answer=answer, answered_on=request.answered_on,
              details=details or {})


def _failed_request(ctx: Ctx, case: Case, ref: int | None) -> UsncbRequest:
    request = ctx.session.get(UsncbRequest, ref) if ref is not None else None
    if request is None or request.case_id != case.id:
        raise Refused("That request does not exist.", code=RefusalCode.no_request)
    if request.delivery != Delivery.failed or request.answer is not None:
        raise Refused("That request is not waiting to be re-sent.", code=RefusalCode.stale)
    require_stage(case, STAGE_OF_REQUEST[RequestKind(request.kind)])
    return request


def retry_delivery(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    request = _failed_request(ctx, case, ref)
    request.delivery, request.delivery_error = Delivery.pending.value, None
    ctx.session.add(request)
    ctx.state("usncb.delivery_retry", case_id=case.id, request_id=request.id)


def switch_to_manual(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    """A request the webhook could not deliver, sent by the officer instead (§6 keeps both)."""
    request = _failed_request(ctx, case, ref)
    not_future(values, "sent_on", today=ctx.today)
    request.channel, request.delivery = UsncbChannelKind.manual.value, None
    request.sent_on, request.method = values["sent_on"], values["method"]
    request.reference = values.get("reference") or ""
    ctx.session.add(request)
    ctx.state("usncb.switched_to_manual", case_id=case.id, request_id=request.id,
              sent_on=request.sent_on)


def _switch_manual_form(given: FormInputs) -> Form:
    title, section = "Sent manually instead", "§6"
    intro = "The liaison system did not take the request; record that you sent it yourself."
    fields = usncb_sent_fields(given.today, given.method)
    return given.form(title, section, fields, intro)


STEP = Step(
    name="USNCB request delivery",
    acts=(
        Act(ActionId.retry_delivery, Who.owner, retry_delivery),
        Act(ActionId.switch_manual, Who.owner, switch_to_manual, form=FormId.switch_manual,
            build=_switch_manual_form),
    ),
)
