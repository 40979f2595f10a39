"""USNCB answers arriving by signed callback: recorded exactly as an officer's manual answer
would be, through the same step functions; an answer already on record changes nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import select

from bot.core import inbound
from bot.core.context import Ctx
from bot.core.errors import FormErrors, Refused
from bot.core.steps import documents as documents_step
from bot.core.steps import use_authorization, validity
from bot.core.steps.base import act_of, check_move
from bot.core.steps.usncb import STAGE_OF_REQUEST
from bot.core.transitions import load_case, require_stage
from bot.messages import ActionId, RefusalCode
from storage.models import Case, RequestKind, UsncbRequest

USNCB_ACTOR = "usncb:liaison"  # the actor of answers that arrive by signed callback
CALLBACK_ANSWERS: dict[RequestKind, frozenset[str]] = {
    RequestKind.validity: frozenset({"active", "suspended", "withdrawn", "expired"}),
    RequestKind.documents: frozenset({"received", "declined"}),
    RequestKind.use_authorization: frozenset({"granted", "denied"}),
}
# The officer's action an answer by callback stands for: its declared moves bound the callback's.
ANSWER_ACT = {
    RequestKind.validity: act_of(validity.STEP, ActionId.validity_answer),
    RequestKind.documents: act_of(documents_step.STEP, ActionId.documents_answer),
    RequestKind.use_authorization: act_of(use_authorization.STEP, ActionId.use_auth_answer),
}


def request_by_external_id(ctx: Ctx, external_id: object) -> UsncbRequest:
    # Looked up only when it can be one of ours (ids are short, printable; NUL cannot even
    # be sent to PostgreSQL).
    usable = isinstance(external_id, str) and 0 < len(external_id) <= 80 \
        and external_id.isprintable()
    request = ctx.session.exec(
        select(UsncbRequest).where(UsncbRequest.external_id == str(external_id))
    ).first() if usable else None
    if request is None:
        raise Refused(f"Unknown request id {inbound.shown(external_id)}.",
                      code=RefusalCode.unknown_request)
    return request


def callback_answer(ctx: Ctx, body: dict[str, Any]) -> tuple[Case, bool]:
    """Record the USNCB's answer exactly as a manual answer would be; (case, newly recorded).
    An answer already on record is acknowledged again and changes nothing."""
    request = request_by_external_id(ctx, body.get("request_id"))
    case = load_case(ctx, request.case_id)
    # Read again now that the case is locked: a simultaneous answer to the same request may
    # have landed while this one waited for the lock (PostgreSQL), and exactly one may land.
    ctx.session.refresh(request)
    kind = RequestKind(request.kind)
    answer = body.get("answer")
    if request.answer is not None:
        if answer != request.answer:
            raise Refused(f"Request {request.external_id} was already answered "
                          f"'{request.answer}'.", code=RefusalCode.answered)
        return case, False
    errors: dict[str, str] = {}
    if not isinstance(answer, str) or answer not in CALLBACK_ANSWERS[kind]:
        errors["answer"] = f"must be one of {', '.join(sorted(CALLBACK_ANSWERS[kind]))}"
    try:
        answered_on = date.fromisoformat(str(body.get("answered_on")))
    except ValueError:
        errors["answered_on"] = "must be a date (YYYY-MM-DD)"
        answered_on = ctx.today
    if body.get("reference") is not None and not isinstance(body.get("reference"), str):
        errors["reference"] = "must be a string"
    documents = body.get("documents") or []
    if not isinstance(documents, list) or any(not isinstance(d, str) for d in documents):
        errors["documents"] = "must be a list of document kinds"
    if errors:
        raise FormErrors(errors)
    require_stage(case, STAGE_OF_REQUEST[kind])
    values = {"answered_on": answered_on, "reference": str(body.get("reference") or ""),
              "status": answer, "answer": answer, "received": documents}
    previous = case.stage
    if kind is RequestKind.validity:
        validity.apply_validity_answer(ctx, case, request, values)
    elif kind is RequestKind.documents:
        documents_step.apply_documents_answer(ctx, case, request, values)
    else:
        use_authorization.apply_use_auth_answer(ctx, case, request, values)
    check_move(ANSWER_ACT[kind], case, previous)
    return case, True
