"""What an attacker, a flaky network and Slack's own retries used to break at the Slack edge
(signed and unsigned garbage, odd ids, re-deliveries, failures after the ack)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from bot.core.service import Core
from storage import record
from storage.models import Approval, UsncbRequest
from storage.vault import Vault
from tests.conftest import TEST_KEY
from tests.handlers.slack.conftest import SECRET, SlackUser
from tests.handlers.slack.slack_requests import FORM, interaction_body
from tests.handlers.slack.test_slack_flow import OPEN_VALUES, TODAY, cases, open_case, step
from tests.handlers.slack.wsgi_call import Answer, call
from tests.helpers import OFFICER, SUBJECT, entries

PATH = "/slack/events"


def verified(core: Core) -> bool:
    with Session(core.engine) as session:
        return record.verify(session, Vault((TEST_KEY,))).ok


def signed(body: bytes, *, timestamp: str | None = None, content_type: str = FORM
           ) -> dict[str, str]:
    stamp = timestamp or str(int(time.time()))
    # Over the raw bytes, as Slack signs them (the SDK's helper only takes text).
    digest = "v0=" + hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body,
                              hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": digest}


def raw(slack: SlackUser, body: bytes, headers: dict[str, str],
        content_length: int | None = None) -> Answer:
    assert slack.wsgi is not None
    return call(slack.wsgi, PATH, body, headers, content_length=content_length)


# --- R7 (item 1): a number as the user id ---------------------------------------------------


@pytest.mark.parametrize("user_id", [1, True, False, None, "U0OFF1\x00", "x" * 500])
def test_r7_a_user_id_of_the_wrong_type_is_refused_recorded_and_the_chain_verifies(
    slack: SlackUser, core: Core, user_id: Any
) -> None:
    value = {"action": "show_case", "case_id": "RN-2026-0001", "ref": None}
    answer = slack.interact({
        "type": "block_actions", "user": {"id": user_id}, "team": {"id": "T1"},
        "trigger_id": "1.2.3", "response_url": slack.fake.response_url("r7"),
        "actions": [{"type": "button", "action_id": "nb:show_case:0", "block_id": "b",
                     "value": json.dumps(value), "action_ts": "1700000000.1"}]})
    assert answer.status_code == 400 and "user id" in answer.text
    refusals = entries(core, kind="refusal", action="slack.unreadable")
    assert len(refusals) == 1 and refusals[0].actor == "unidentified"
    assert verified(core)


def test_r7_entries_hash_the_actor_as_stored(core: Core) -> None:
    from storage.db import transaction

    with transaction(core.engine) as session:
        record.append(session, at=core.clock.now(), actor=1, kind="click",  # type: ignore[arg-type]
                      action="click.approve", case_id=7)  # type: ignore[arg-type]
    assert entries(core)[-1].actor == "1"
    assert verified(core)


# --- R1/R9 (item 5): signature first --------------------------------------------------------


UNSIGNED = [b"payload=notjson", b"{", b"payload=[1]", b"payload=null", b"\xff\xfe\x00garbage",
            b"payload=%7B%22type%22", b""]


@pytest.mark.parametrize("body", UNSIGNED)
def test_r1_unsigned_garbage_is_401_never_500(slack: SlackUser, core: Core, body: bytes) -> None:
    before = len(entries(core))
    assert raw(slack, body, {"Content-Type": FORM}).status == 401
    assert raw(slack, body, {"Content-Type": "application/json"}).status == 401
    assert len(entries(core)) == before


def test_r1_truncated_body_is_401(slack: SlackUser) -> None:
    body = interaction_body({"type": "block_actions", "user": {"id": OFFICER}})
    headers = signed(body.encode())
    assert raw(slack, body.encode()[:20], headers, content_length=len(body)).status == 401


@pytest.mark.parametrize("timestamp", ["abc", "", "1700000000.5", "{now},{now}", "١٢٣", "-1"])
def test_r1_forged_timestamp_headers_are_401(slack: SlackUser, timestamp: str) -> None:
    body = b"command=%2Fnotice&text=help&user_id=U0OFF1"
    stamp = timestamp.replace("{now}", str(int(time.time())))
    headers = {"Content-Type": FORM, "X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": "v0=" + "0" * 64}
    assert raw(slack, body, headers).status == 401


@pytest.mark.parametrize("signature", ["v0=é" + "0" * 63, "v0=", "", "v1=" + "0" * 64,
                                       "v0=" + "Z" * 64])
def test_r1_forged_signatures_are_401(slack: SlackUser, signature: str) -> None:
    body = b"command=%2Fnotice&text=help&user_id=U0OFF1"
    headers = {**signed(body), "X-Slack-Signature": signature}
    assert raw(slack, body, headers).status == 401


@pytest.mark.parametrize("body", [b"payload=notjson", b"payload=[1]", b"payload=null",
                                  b"\xff\xfe", b"payload=" + b"%5B" * 3000,
                                  b'payload={"type": 1}', b'payload={"type":"block_actions",'
                                  b'"user":"U0OFF1"}'])
def test_r9_signed_but_unreadable_is_a_recorded_400(
    slack: SlackUser, core: Core, body: bytes
) -> None:
    answer = raw(slack, body, signed(body))
    assert answer.status == 400, answer.text
    assert len(entries(core, kind="refusal", action="slack.unreadable")) == 1
    assert verified(core)


# --- R2 (item 4): re-delivered forms and clicks --------------------------------------------


def test_r2_a_redelivered_step_form_is_applied_once(slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    opened = len(slack.fake.of("views.open"))
    slack.click(OFFICER, slack.button("validity_sent", case_id))
    slack.fake.wait_for(lambda: len(slack.fake.of("views.open")) > opened)
    view = slack.last_view()
    values = {"sent_on": TODAY, "method": "e-mail"}
    first = slack.submit(OFFICER, view, values, view_id="VSTEP1")
    again = slack.post(json.loads(json.dumps(first.request.content.decode())),
                       headers={"X-Slack-Retry-Num": "1"})
    assert first.status_code == again.status_code == 200
    with Session(core.engine) as session:
        assert len(session.exec(select(UsncbRequest)).all()) == 1
    assert len(entries(core, action="form.validity_sent")) == 1


def test_r2_a_corrected_resubmission_of_the_same_view_is_applied(
    slack: SlackUser, core: Core
) -> None:
    case_id = open_case(slack, core)
    opened = len(slack.fake.of("views.open"))
    slack.click(OFFICER, slack.button("validity_sent", case_id))
    slack.fake.wait_for(lambda: len(slack.fake.of("views.open")) > opened)
    view = slack.last_view()
    bad = slack.submit(OFFICER, view, {"sent_on": "2099-01-01", "method": "e-mail"},
                       view_id="VSTEP2")
    assert bad.json()["response_action"] == "errors"
    good = slack.submit(OFFICER, view, {"sent_on": TODAY, "method": "e-mail"}, view_id="VSTEP2")
    assert good.status_code == 200 and good.content in (b"", b"{}")
    with Session(core.engine) as session:
        assert len(session.exec(select(UsncbRequest)).all()) == 1


def test_r2_a_redelivered_click_is_acted_on_once(slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    step(slack, OFFICER, "validity_sent", case_id, {"sent_on": TODAY, "method": "x"})
    step(slack, OFFICER, "validity_answer", case_id, {"status": "active", "answered_on": TODAY})
    step(slack, OFFICER, "review", case_id, {
        "sources": ["interpol_guidance", "law_enforcement_systems", "usg_reports",
                    "public_information"], "outcome": "no_indications"})
    click = slack.click(OFFICER, slack.button("request_approval", case_id))
    body = click.request.content.decode()
    assert slack.post(body, headers={"X-Slack-Retry-Num": "1"}).status_code == 200
    assert slack.post(body, headers={"X-Slack-Retry-Num": "2"}).status_code == 200
    slack.settle(core)  # nothing in flight: what did not happen will not
    with Session(core.engine) as session:
        assert len(session.exec(select(Approval)).all()) == 1
    assert len(entries(core, action="click.request_approval")) == 1
    assert not entries(core, kind="refusal", case_id=case_id)


# --- R9 (item 9): a failure after the ack ---------------------------------------------------


def test_r9_a_failure_after_the_ack_is_told_to_the_user(
    slack: SlackUser, core: Core, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    def outage(**_: Any) -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is down"))

    monkeypatch.setattr(core, "command", outage)
    monkeypatch.setattr(core, "click", outage)
    started = time.monotonic()
    assert slack.command(OFFICER, "open").status_code == 200
    assert slack.click(OFFICER, {"action": "show_case", "case_id": "RN-2026-0001",
                                 "ref": None}).status_code == 200
    assert time.monotonic() - started < 2.5  # no 404 after Bolt's 3 s wait
    slack.fake.wait_for(lambda: len(slack.fake.of("response_url")) >= 2)
    for answer in slack.fake.of("response_url"):
        assert "nothing was changed" in answer["text"] and answer["response_type"] == "ephemeral"
    assert any("failed after Slack's request was acknowledged" in r.message
               for r in caplog.records)


def test_r9_a_failing_submission_is_answered_in_the_modal(
    slack: SlackUser, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack.command(OFFICER, "open")
    slack.fake.wait_for(lambda: bool(slack.fake.of("views.open")))
    view = slack.last_view()

    def outage(**_: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("database is down"))

    monkeypatch.setattr(core, "submit", outage)
    answer = slack.submit(OFFICER, view, OPEN_VALUES)
    assert answer.status_code == 200 and answer.json()["response_action"] == "update"
    assert "nothing was changed" in json.dumps(answer.json())
    assert cases(core) == []


# --- item 10: unreadable button values are on the record -----------------------------------


@pytest.mark.parametrize("value", ["{not json", "[1]", '{"action": "approve", "ref": "1e99"}',
                                   '{"action": "approve", "case_id": 5}', "null",
                                   '{"action": "approve", "ref": 99999999999}'])
def test_unreadable_button_values_are_refused_and_recorded(
    slack: SlackUser, core: Core, value: str
) -> None:
    answer = slack.interact({
        "type": "block_actions", "user": {"id": OFFICER}, "team": {"id": "T1"},
        "response_url": slack.fake.response_url("bad"), "trigger_id": "t",
        "actions": [{"type": "button", "action_id": "nb:approve:0", "value": value,
                     "block_id": "b", "action_ts": "1"}]})
    assert answer.status_code == 200
    slack.fake.wait_for(lambda: bool(slack.fake.of("response_url")))
    assert "not valid" in json.dumps(slack.fake.of("response_url")[-1])
    refused = entries(core, kind="refusal", action="click.unreadable")
    assert len(refused) == 1 and refused[0].actor == OFFICER
    assert verified(core)


# --- O18 (item 6): details pressed from App Home ------------------------------------------


def test_o18_details_from_app_home_open_a_modal_never_a_dm(slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    posts_before = len(slack.fake.of("chat.postMessage"))
    body = interaction_body({
        "type": "block_actions", "user": {"id": OFFICER}, "team": {"id": "T1"},
        "trigger_id": "home.1.abc", "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home"},
        "actions": [{"type": "button", "action_id": "nb:show_case:0", "block_id": "b",
                     "action_ts": "1700000001.5",
                     "value": json.dumps({"action": "show_case", "case_id": case_id,
                                          "ref": None})}]})
    assert slack.post(body).status_code == 200
    slack.fake.wait_for(lambda: any(SUBJECT["subject_name"] in json.dumps(v)
                                    for v in slack.fake.of("views.open")))
    slack.settle(core)  # nothing in flight: what did not happen will not
    for call_body in slack.fake.of("chat.postMessage")[posts_before:]:
        assert SUBJECT["subject_name"] not in json.dumps(call_body)
    assert entries(core, kind="read", case_id=case_id)


def test_commands_with_unusable_case_ids_are_answered_and_recorded(
    slack: SlackUser, core: Core
) -> None:
    for text in ("show RN-\x00", "show " + "R" * 6000):
        body = urlencode({"command": "/notice", "text": text, "user_id": OFFICER,
                          "channel_id": "C0HOUCASES", "team_id": "T1", "trigger_id": "1.2.3",
                          "response_url": slack.fake.response_url("cid")})
        assert slack.post(body).status_code == 200
    slack.fake.wait_for(lambda: len(slack.fake.of("response_url")) >= 2)
    assert all("Not done" in json.dumps(a) for a in slack.fake.of("response_url"))
    assert len(entries(core, kind="refusal", action="command.show")) == 2
    assert verified(core)


def test_r9_open_during_a_database_outage_is_answered(
    slack: SlackUser, core: Core, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A real outage, not a stub: the core's engine points at a database that cannot open."""
    from sqlalchemy import create_engine

    down = create_engine(f"sqlite:///{tmp_path}/missing/dir/noticebot.db")
    monkeypatch.setattr(core, "engine", down)
    started = time.monotonic()
    assert slack.command(OFFICER, "open").status_code == 200
    assert time.monotonic() - started < 2.5
    slack.fake.wait_for(lambda: bool(slack.fake.of("response_url")))
    answer = slack.fake.of("response_url")[-1]
    assert "nothing was changed" in answer["text"] and answer["response_type"] == "ephemeral"
    assert not slack.fake.of("views.open")
    down.dispose()
