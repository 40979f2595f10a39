"""POST /usncb/callback under attack and under races: a 4xx for every bad input, and exactly
one answer per request however many arrive at once."""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import httpx
import pytest
import respx
from sqlmodel import Session

from bot.core.service import Core
from bot.messages import ActionId
from storage import record
from storage.vault import Vault
from tests.conftest import TEST_KEY, on_postgres
from tests.helpers import CLEAN_REVIEW, FRO, OFFICER, TODAY, entries, open_case, press, run_together
from tests.usncb.conftest import LIAISON, callback
from tests.usncb.test_webhook import requests_of, send_validity


def answered_request(core: Core, liaison: respx.MockRouter) -> str:
    liaison.post(LIAISON).mock(return_value=httpx.Response(200))
    send_validity(core, open_case(core))
    request_id = requests_of(core)[0].external_id
    assert request_id is not None
    return request_id


def verified(core: Core) -> bool:
    with Session(core.engine) as session:
        return record.verify(session, Vault((TEST_KEY,))).ok


def test_a_non_ascii_signature_is_401(webhook_core: Core) -> None:
    status, _ = callback(webhook_core, {"request_id": "x"}, signature="v1=é0" + "0" * 62)
    assert status.startswith("401")
    status, _ = callback(webhook_core, {"request_id": "x"}, timestamp=None,
                         signature="v1=" + "0" * 64)
    assert status.startswith("401")


def test_a_signed_body_nested_too_deep_is_400(webhook_core: Core) -> None:
    status, body = callback(webhook_core, b"[" * 30_000 + b"]" * 30_000)
    assert status.startswith("400") and "JSON" in body["error"]


@pytest.mark.parametrize("request_id", ["NB-\x00-1", "x" * 6000, 7, None, ["NB-1"]])
def test_request_ids_that_cannot_be_ours_are_4xx_and_recorded(
    webhook_core: Core, liaison: respx.MockRouter, request_id: Any
) -> None:
    answered_request(webhook_core, liaison)
    status, body = callback(webhook_core, {"request_id": request_id, "answer": "active",
                                           "answered_on": TODAY})
    assert status[:3] in ("400", "404"), (status, body)
    assert entries(webhook_core, kind="refusal", actor="usncb:liaison")
    assert verified(webhook_core)


@pytest.mark.parametrize("field, value", [("answer", ["active"]), ("answer", {"a": 1}),
                                          ("answered_on", ["2026-11-23"]),
                                          ("documents", "warrant"), ("reference", {"x": 1})])
def test_answers_of_the_wrong_type_are_400_with_fields(
    webhook_core: Core, liaison: respx.MockRouter, field: str, value: Any
) -> None:
    request_id = answered_request(webhook_core, liaison)
    answer = {"request_id": request_id, "answer": "active", "answered_on": TODAY, field: value}
    status, body = callback(webhook_core, answer)
    assert status.startswith("400") and field in body["fields"], (status, body)
    assert requests_of(webhook_core)[0].answer is None


def test_a_different_answer_after_one_landed_is_409(
    webhook_core: Core, liaison: respx.MockRouter
) -> None:
    request_id = answered_request(webhook_core, liaison)
    first = {"request_id": request_id, "answer": "active", "answered_on": TODAY}
    assert callback(webhook_core, first)[0].startswith("200")
    status, body = callback(webhook_core, {**first, "answer": "withdrawn"},
                            timestamp=int(time.time()) + 1)
    assert status.startswith("409") and "already answered" in body["error"]
    assert requests_of(webhook_core)[0].answer == "active"


@pytest.mark.skipif(not on_postgres(), reason="needs NOTICEBOT_TEST_DATABASE_URL (PostgreSQL)")
def test_r3_simultaneous_answers_to_one_request_land_once(
    webhook_core: Core, liaison: respx.MockRouter
) -> None:
    """The attack run's case: `received`, `declined`, `received` for one documents request at
    the same moment. The case stays at the documents step whichever lands, so only reading
    the request after the case is locked tells the later ones it was answered."""
    liaison.post(LIAISON).mock(return_value=httpx.Response(200))
    for round_ in range(5):
        case_id = open_case(webhook_core)
        send_validity(webhook_core, case_id)
        validity = requests_of(webhook_core)[-1].external_id
        assert callback(webhook_core, {"request_id": validity, "answer": "active",
                                       "answered_on": TODAY})[0].startswith("200")
        assert press(webhook_core, OFFICER, case_id, ActionId.review, CLEAN_REVIEW).ok
        assert press(webhook_core, OFFICER, case_id, ActionId.request_approval).ok
        assert press(webhook_core, FRO, case_id, ActionId.approve).ok
        assert press(webhook_core, OFFICER, case_id, ActionId.documents_sent,
                     {"documents": ["warrant"]}).ok
        webhook_core.deliver_usncb()
        request_id = requests_of(webhook_core)[-1].external_id
        stamp = int(time.time())
        bodies = [json.dumps({"request_id": request_id, "answer": answer, "n": n,
                              "answered_on": TODAY, "documents": ["warrant"]}).encode()
                  for n, answer in enumerate(("received", "declined", "received"))]
        answers = run_together(*(partial(callback, webhook_core, body, timestamp=stamp)
                                 for body in bodies))
        recorded = [b for s, b in answers if s.startswith("200") and b["status"] == "recorded"]
        assert len(recorded) == 1, (round_, answers)
        assert all(s[:3] in ("200", "409") for s, _ in answers), answers
        # One for the validity answer, one for the documents answer.
        assert len(entries(webhook_core, action="usncb.answer", case_id=case_id)) == 2
    assert verified(webhook_core)
