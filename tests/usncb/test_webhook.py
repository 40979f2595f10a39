"""The webhook channel: signed requests out, signed answers back, nothing lost or doubled."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import respx
from sqlmodel import Session, select

from bot.core.service import Core
from bot.messages import ActionId, ActionValue
from bot.usncb.signing import REQUEST_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from storage.models import Case, CloseReason, Stage, UsncbRequest
from tests.helpers import CLEAN_REVIEW, FRO, OFFICER, SUBJECT, TODAY, entries, open_case, press
from tests.usncb.conftest import LIAISON, SECRET, callback


def requests_of(core: Core) -> list[UsncbRequest]:
    with Session(core.engine) as session:
        return list(session.exec(select(UsncbRequest).order_by(UsncbRequest.id)))  # type: ignore[arg-type]


def send_validity(core: Core, case_id: str) -> None:
    outcome = core.click(actor=OFFICER, value=ActionValue(ActionId.validity_sent, case_id))
    assert outcome.ok and outcome.form is None  # nothing to ask: noticebot sends it
    core.deliver_usncb()


def test_request_is_signed_json_with_an_idempotency_id(webhook_core: Core,
                                                       liaison: respx.MockRouter) -> None:
    route = liaison.post(LIAISON).mock(return_value=httpx.Response(202, json={"reference": "U-1"}))
    case_id = open_case(webhook_core)
    send_validity(webhook_core, case_id)
    assert route.call_count == 1
    sent = route.calls.last.request
    body = json.loads(sent.content)
    assert body["kind"] == "validity" and body["case_id"] == case_id
    assert body["request_id"] == sent.headers[REQUEST_ID_HEADER]
    assert body["notice"]["reference"] == SUBJECT["notice_reference"]
    assert SUBJECT["subject_name"] not in sent.content.decode()
    assert verify(SECRET, timestamp=sent.headers[TIMESTAMP_HEADER],
                  signature=sent.headers[SIGNATURE_HEADER], body=sent.content, now=time.time())
    request = requests_of(webhook_core)[0]
    assert request.delivery == "delivered" and request.reference == "U-1"
    assert entries(webhook_core, action="usncb.request_delivered")


def test_5xx_and_timeouts_are_retried_then_delivered(webhook_core: Core,
                                                     liaison: respx.MockRouter) -> None:
    route = liaison.post(LIAISON).mock(side_effect=[
        httpx.Response(503), httpx.TimeoutException("slow"), httpx.Response(200)])
    send_validity(webhook_core, open_case(webhook_core))
    assert route.call_count == 3
    ids = {call.request.headers[REQUEST_ID_HEADER] for call in route.calls}
    assert len(ids) == 1  # every attempt carries the same request id
    assert requests_of(webhook_core)[0].delivery == "delivered"


def test_4xx_is_not_retried_and_shows_not_delivered_with_fixes(
    webhook_core: Core, liaison: respx.MockRouter
) -> None:
    route = liaison.post(LIAISON).mock(return_value=httpx.Response(422))
    case_id = open_case(webhook_core)
    send_validity(webhook_core, case_id)
    assert route.call_count == 1
    request = requests_of(webhook_core)[0]
    assert request.delivery == "failed" and "422" in (request.delivery_error or "")
    from tests.helpers import buttons

    offered = buttons(webhook_core, case_id)
    assert {ActionId.retry_delivery, ActionId.switch_manual} <= set(offered)
    home = webhook_core.home(actor=OFFICER).private[-1].text
    assert "NOT DELIVERED" in home


def test_retry_resends_with_the_same_id_and_manual_switch_records_it(
    webhook_core: Core, liaison: respx.MockRouter
) -> None:
    route = liaison.post(LIAISON).mock(side_effect=[httpx.Response(500)] * 3
                                       + [httpx.Response(200)])
    case_id = open_case(webhook_core)
    send_validity(webhook_core, case_id)
    assert requests_of(webhook_core)[0].delivery == "failed"
    assert press(webhook_core, OFFICER, case_id, ActionId.retry_delivery).ok
    webhook_core.deliver_usncb()
    assert route.call_count == 4
    assert len({c.request.headers[REQUEST_ID_HEADER] for c in route.calls}) == 1
    assert requests_of(webhook_core)[0].delivery == "delivered"
    # A second case whose request fails is sent by hand instead.
    route.side_effect = [httpx.Response(400)]
    other = open_case(webhook_core)
    send_validity(webhook_core, other)
    assert press(webhook_core, OFFICER, other, ActionId.switch_manual,
                 {"sent_on": TODAY, "method": "USNCB e-mail"}).ok
    switched = requests_of(webhook_core)[-1]
    assert switched.channel == "manual" and switched.delivery is None


def test_callback_accepted_once_replays_forged_stale_refused(
    webhook_core: Core, liaison: respx.MockRouter
) -> None:
    liaison.post(LIAISON).mock(return_value=httpx.Response(200))
    case_id = open_case(webhook_core)
    send_validity(webhook_core, case_id)
    request_id = requests_of(webhook_core)[0].external_id
    answer: dict[str, Any] = {"request_id": request_id, "answer": "active",
                              "answered_on": TODAY, "reference": "USNCB-77"}
    before = len(entries(webhook_core))
    stamp = int(time.time())
    assert callback(webhook_core, answer, signature="v1=" + "0" * 64)[0].startswith("401")
    assert callback(webhook_core, answer, secret="wrong-secret-wrong-secret")[0].startswith("401")
    assert callback(webhook_core, answer, timestamp=stamp - 301)[0].startswith("401")
    assert len(entries(webhook_core)) == before  # nothing written for any of them
    status, body = callback(webhook_core, answer, timestamp=stamp)
    assert status.startswith("200") and body["status"] == "recorded"
    with Session(webhook_core.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None and case.stage == Stage.review
    written = len(entries(webhook_core))
    assert callback(webhook_core, answer, timestamp=stamp)[0].startswith("401")  # replay
    assert len(entries(webhook_core)) == written
    again = callback(webhook_core, answer, timestamp=stamp + 1)  # a new, genuine re-send
    assert again[0].startswith("200") and again[1]["status"] == "already recorded"
    assert len(entries(webhook_core, action="usncb.answer")) == 1


def test_callback_unknown_request_and_bad_answer_are_clear_errors(
    webhook_core: Core, liaison: respx.MockRouter
) -> None:
    liaison.post(LIAISON).mock(return_value=httpx.Response(200))
    case_id = open_case(webhook_core)
    send_validity(webhook_core, case_id)
    status, body = callback(webhook_core, {"request_id": "NB-NOPE-1", "answer": "active",
                                           "answered_on": TODAY})
    assert status.startswith("404") and "Unknown request id" in body["error"]
    request_id = requests_of(webhook_core)[0].external_id
    status, body = callback(webhook_core, {"request_id": request_id, "answer": "granted",
                                           "answered_on": "yesterday"})
    assert status.startswith("400") and set(body["fields"]) == {"answer", "answered_on"}
    assert callback(webhook_core, b"[1, 2]")[0].startswith("400")
    with Session(webhook_core.engine) as session:
        assert session.get(Case, case_id).stage == Stage.validity  # type: ignore[union-attr]


def test_case_walked_end_to_end_with_answers_by_callback_only(
    webhook_core: Core, liaison: respx.MockRouter
) -> None:
    liaison.post(LIAISON).mock(return_value=httpx.Response(200))

    def answer(kind: str, value: str, **extra: Any) -> None:
        request = [r for r in requests_of(webhook_core) if r.kind == kind][-1]
        assert request.delivery == "delivered"
        status, _ = callback(webhook_core, {"request_id": request.external_id, "answer": value,
                                            "answered_on": TODAY, **extra})
        assert status.startswith("200"), status

    case_id = open_case(webhook_core, extradition_pending="yes")
    send_validity(webhook_core, case_id)
    answer("validity", "active")
    assert press(webhook_core, OFFICER, case_id, ActionId.review, CLEAN_REVIEW).ok
    assert press(webhook_core, OFFICER, case_id, ActionId.request_approval).ok
    assert press(webhook_core, FRO, case_id, ActionId.approve).ok
    assert press(webhook_core, OFFICER, case_id, ActionId.documents_sent,
                 {"documents": ["warrant", "indictment"]}).ok
    webhook_core.deliver_usncb()
    documents = json.loads(liaison.calls.last.request.content)
    assert documents["kind"] == "documents" and documents["documents"] == ["warrant",
                                                                           "indictment"]
    answer("documents", "received", documents=["warrant"])
    assert press(webhook_core, OFFICER, case_id, ActionId.documents_review,
                 {"indications": "no", "better_evidence": "yes"}).ok
    missing_doj = press(webhook_core, OFFICER, case_id, ActionId.use_auth_sent,
                        {"purpose": "immigration"})
    assert "doj_coordination" in missing_doj.errors
    assert press(webhook_core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "immigration", "doj_coordination": "OIA consulted on case"}).ok
    webhook_core.deliver_usncb()
    use = json.loads(liaison.calls.last.request.content)
    assert use["opla_facilitates"] is True and use["extradition_pending"] is True
    answer("use_authorization", "granted")
    with Session(webhook_core.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None and case.stage == Stage.disclosure
    # The thread shows each answer as done, like a manual answer would.
    assert entries(webhook_core, actor="usncb:liaison", action="step.completed")


def test_callback_denial_closes_the_case(webhook_core: Core, liaison: respx.MockRouter) -> None:
    liaison.post(LIAISON).mock(return_value=httpx.Response(200))
    case_id = open_case(webhook_core)
    send_validity(webhook_core, case_id)
    request_id = requests_of(webhook_core)[0].external_id
    assert callback(webhook_core, {"request_id": request_id, "answer": "withdrawn",
                                   "answered_on": TODAY})[0].startswith("200")
    with Session(webhook_core.engine) as session:
        assert session.get(Case, case_id).close_reason == CloseReason.notice_inactive  # type: ignore[union-attr]


def test_o29_no_request_while_indications_exist(webhook_core: Core,
                                                liaison: respx.MockRouter) -> None:
    route = liaison.post(LIAISON).mock(return_value=httpx.Response(200))
    case_id = open_case(webhook_core)
    send_validity(webhook_core, case_id)
    request_id = requests_of(webhook_core)[0].external_id
    callback(webhook_core, {"request_id": request_id, "answer": "active", "answered_on": TODAY})
    assert press(webhook_core, OFFICER, case_id, ActionId.review, {
        **CLEAN_REVIEW, "indicators": ["targeted_person"], "outcome": "doubt"}).ok
    refused = webhook_core.click(actor=OFFICER,
                                 value=ActionValue(ActionId.documents_sent, case_id))
    assert refused.refusal
    webhook_core.deliver_usncb()
    assert route.call_count == 1  # only the validity request ever left
    for call in route.calls:
        assert "requesting" not in call.request.content.decode().lower()


def test_manual_mode_gives_the_request_text_to_copy(core: Core) -> None:
    case_id = open_case(core)
    form = core.click(actor=OFFICER, value=ActionValue(ActionId.validity_sent, case_id)).form
    assert form is not None and "through your local procedure" in form.intro
    request = form.preformatted  # the request text, to copy as is
    assert SUBJECT["notice_reference"] in request and case_id in request
    assert {f.name for f in form.fields} == {"sent_on", "method", "reference"}
