"""A case walked purely with signed Slack requests through the real HTTP endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from slack_sdk.models.blocks import Block
from sqlmodel import Session, select

from bot.core.service import Core
from bot.messages import ActionId
from storage import record
from storage.models import Case, CloseReason, OutboxMessage, PlatformMessage, Stage
from storage.vault import Vault
from tests.conftest import TEST_KEY
from tests.handlers.slack.conftest import SlackUser
from tests.helpers import DESIGNEE, FRO, MANAGER, OFFICER, OFFICER_LAPSED, OPLA, SUBJECT, entries
from tests.walk import CANONICAL_WALK, Move

TODAY = "2026-11-23"
OPEN_VALUES = {
    "notice_type": "red_notice", "intended_use": "immigration", "extradition_pending": "no",
    **SUBJECT,
}


def cases(core: Core) -> list[Case]:
    with Session(core.engine) as session:
        return list(session.exec(select(Case)))


def wait_stage(slack: SlackUser, core: Core, case_id: str, stage: str) -> None:
    def reached() -> bool:
        return any(c.id == case_id and c.stage == stage for c in cases(core))
    slack.fake.wait_for(reached)


def step(slack: SlackUser, user: str, action: str, case_id: str,
         values: dict[str, Any] | None = None) -> None:
    """Click the button the bot showed; fill the modal it opens, if any."""
    opened = len(slack.fake.of("views.open"))
    assert slack.click(user, slack.button(action, case_id)).status_code == 200
    if values is None:
        return
    slack.fake.wait_for(lambda: len(slack.fake.of("views.open")) > opened)
    response = slack.submit(user, slack.last_view(), values)
    assert response.status_code == 200
    assert response.content in (b"", b"{}") or "errors" not in response.json(), response.text


def walk_slack(slack: SlackUser, core: Core, case_id: str, moves: Iterable[Move],
               after: Callable[[Move], None] | None = None) -> None:
    """The Slack driver of the canonical walk: click each button, fill the modal it opens,
    and wait for the stages the walk names."""
    for move in moves:
        step(slack, move.actor, move.action, case_id, move.values)
        if move.reaches is not None:
            wait_stage(slack, core, case_id, move.reaches)
        if after is not None:
            after(move)


def request_approval(slack: SlackUser, case_id: str) -> None:
    """Validity active, a clean review, and the approval requested, all by the officer."""
    step(slack, OFFICER, "validity_sent", case_id, {"sent_on": TODAY, "method": "x"})
    step(slack, OFFICER, "validity_answer", case_id, {"status": "active", "answered_on": TODAY})
    step(slack, OFFICER, "review", case_id, {
        "sources": ["interpol_guidance", "law_enforcement_systems", "usg_reports",
                    "public_information"], "outcome": "no_indications"})
    step(slack, OFFICER, "request_approval", case_id)


def open_case(slack: SlackUser, core: Core) -> str:
    assert slack.command(OFFICER, "open").status_code == 200
    slack.fake.wait_for(lambda: bool(slack.fake.of("views.open")))
    assert slack.submit(OFFICER, slack.last_view(), OPEN_VALUES).status_code == 200
    slack.fake.wait_for(lambda: bool(cases(core)))
    case_id = cases(core)[0].id
    slack.button("validity_sent", case_id)
    return case_id


def test_whole_case_walked_through_slack(slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    roots = [c for c in slack.fake.of("chat.postMessage") if c["channel"] == "C0HOUCASES"
             and "thread_ts" not in c]
    assert len(roots) == 1
    def after(move: Move) -> None:
        if move.action is ActionId.request_approval:
            # The approval request went to the FRO's DM.
            slack.fake.wait_for(lambda: bool(slack.fake.of("conversations.open")))
            assert slack.fake.of("conversations.open")[-1]["users"] == FRO
        if move.reaches is Stage.ready:
            slack.fake.wait_for(lambda: any("Threshold criteria met" in json.dumps(c)
                                            for c in slack.fake.of("chat.postMessage")))

    # The canonical walk (tests/walk.py), to the end of the case: the use recorded, closed.
    walk_slack(slack, core, case_id, CANONICAL_WALK, after=after)
    slack.fake.wait_for(lambda: any("Use recorded" in json.dumps(c)
                                    for m in ("chat.postMessage", "chat.update")
                                    for c in slack.fake.of(m)))
    # Prompts were updated in place: chat.update on the thread messages.
    assert slack.fake.of("chat.update")
    # O18: no subject detail in anything posted or updated.
    for method in ("chat.postMessage", "chat.update"):
        for body in slack.fake.of(method):
            text = json.dumps(body)
            for detail in SUBJECT.values():
                assert detail not in text, (method, detail)
    # Every posted block passes the SDK's Block Kit validation.
    for method in ("chat.postMessage", "chat.update"):
        for body in slack.fake.of(method):
            assert len(body["blocks"]) <= 50
            for block in body["blocks"]:
                Block.parse(block).validate_json()  # type: ignore[union-attr]
    with Session(core.engine) as session:
        assert record.verify(session, Vault((TEST_KEY,))).ok


def test_r4_other_accounts_are_refused_at_state_changing_steps(
    slack: SlackUser, core: Core
) -> None:
    case_id = open_case(slack, core)
    before = len(slack.fake.of("views.open"))
    for outsider in (FRO, MANAGER, OPLA, OFFICER_LAPSED, "U0STRANGER"):
        assert slack.click(outsider, slack.button("validity_sent", case_id)).status_code == 200
    slack.fake.wait_for(lambda: len(entries(core, kind="refusal", case_id=case_id)) == 5)
    assert len(slack.fake.of("views.open")) == before  # no form opened for them
    slack.fake.wait_for(lambda: len(slack.fake.of("response_url")) >= 5)
    refusal = slack.fake.of("response_url")[-1]
    assert refusal["response_type"] == "ephemeral"


def test_r4_approval_button_refuses_everyone_but_the_chain(slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    request_approval(slack, case_id)
    approve = slack.button("approve", case_id)
    for outsider in (OFFICER, MANAGER, OPLA, "U0STRANGER"):
        slack.click(outsider, approve)
    slack.fake.wait_for(lambda: len(entries(core, kind="refusal", case_id=case_id)) == 4)
    assert cases(core)[0].stage == Stage.approval
    # R2: the designee double-clicks deny's sibling approve; one decision only.
    slack.click(DESIGNEE, approve)
    slack.click(DESIGNEE, approve)
    wait_stage(slack, core, case_id, Stage.documents)
    slack.fake.wait_for(lambda: len(entries(core, kind="refusal", case_id=case_id)) == 5)
    assert len(entries(core, action="approval.decided", case_id=case_id)) == 1


def test_modal_shows_inline_errors_and_writes_nothing(slack: SlackUser, core: Core) -> None:
    slack.command(OFFICER, "open")
    slack.fake.wait_for(lambda: bool(slack.fake.of("views.open")))
    response = slack.submit(OFFICER, slack.last_view(),
                            {**OPEN_VALUES, "issuing_country": "Mexico", "published_on": None})
    assert response.json()["response_action"] == "errors"
    assert "issuing_country" in response.json()["errors"]
    assert cases(core) == []


def test_r2_resubmitted_modal_creates_one_case(slack: SlackUser, core: Core) -> None:
    slack.command(OFFICER, "open")
    slack.fake.wait_for(lambda: bool(slack.fake.of("views.open")))
    view = slack.last_view()
    for _ in range(2):
        assert slack.submit(OFFICER, view, OPEN_VALUES, view_id="VSAME").status_code == 200
    slack.fake.wait_for(lambda: bool(cases(core)))
    slack.settle(core)  # nothing in flight: what did not happen will not
    assert len(cases(core)) == 1
    roots = [c for c in slack.fake.of("chat.postMessage") if "thread_ts" not in c
             and c["channel"] == "C0HOUCASES"]
    assert len(roots) == 1


def test_r1_forged_unsigned_and_stale_requests_get_401(slack: SlackUser, core: Core) -> None:
    before = len(entries(core))
    body = "command=%2Fnotice&text=open&user_id=U0OFF1&channel_id=C1&trigger_id=t"
    assert slack.post(body, signature="v0=" + "0" * 64).status_code == 401
    assert slack.http.post("/slack/events", content=body.encode(),
                           headers={"Content-Type": "application/x-www-form-urlencoded"}
                           ).status_code == 401
    assert slack.post(body, timestamp=int(time.time()) - 301).status_code == 401
    assert len(entries(core)) == before


def test_r9_malformed_payloads_get_a_clear_error_not_a_500(slack: SlackUser, core: Core) -> None:
    bad_button = slack.interact({
        "type": "block_actions", "user": {"id": OFFICER}, "team": {"id": "T1"},
        "response_url": slack.fake.response_url("bad"), "trigger_id": "t",
        "actions": [{"type": "button", "action_id": "nb:approve:0", "value": "{not json",
                     "block_id": "b", "action_ts": "1"}]})
    assert bad_button.status_code == 200
    slack.fake.wait_for(lambda: bool(slack.fake.of("response_url")))
    assert "not valid" in json.dumps(slack.fake.of("response_url")[-1])
    broken_view = slack.interact({
        "type": "view_submission", "user": {"id": OFFICER}, "team": {"id": "T1"},
        "view": {"id": "V1", "type": "modal", "callback_id": "nb:form",
                 "private_metadata": "garbage",
                 "state": {"values": {}}, "blocks": []}})
    assert broken_view.status_code == 200
    assert broken_view.json()["response_action"] == "update"
    no_type = slack.interact({"type": "view_submission", "user": {"id": OFFICER},
                              "view": {"id": "V2", "callback_id": "nb:form"}})
    assert no_type.status_code == 400 and "could not read" in no_type.text
    assert cases(core) == []


def test_app_home_lists_cases_and_approvals(slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    event = {"type": "event_callback", "team_id": "T1", "event_id": "Ev1",
             "event": {"type": "app_home_opened", "user": OFFICER, "tab": "home"}}
    assert slack.post(json.dumps(event), content_type="application/json").status_code == 200
    slack.fake.wait_for(lambda: bool(slack.fake.of("views.publish")))
    home = json.dumps(slack.fake.of("views.publish")[-1])
    assert case_id in home and SUBJECT["subject_name"] not in home
    # A retried delivery of the same event is acknowledged and not acted on again.
    assert slack.post(json.dumps(event), content_type="application/json",
                      headers={"X-Slack-Retry-Num": "1"}).status_code == 200
    slack.settle(core)  # nothing in flight: what did not happen will not
    assert len(slack.fake.of("views.publish")) == 1


def test_show_details_are_ephemeral_for_authorized_users(slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    slack.command(OFFICER, f"show {case_id}")
    slack.fake.wait_for(lambda: any(SUBJECT["subject_name"] in json.dumps(c)
                                    for c in slack.fake.of("response_url")))
    shown = [c for c in slack.fake.of("response_url") if SUBJECT["subject_name"] in json.dumps(c)]
    assert all(c["response_type"] == "ephemeral" for c in shown)


def test_healthz(slack: SlackUser) -> None:
    response = slack.http.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_inactive_notice_reported_from_slack_closes_case(slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    step(slack, OFFICER, "report_inactive", case_id, {"status": "expired", "note": "bulletin"})
    slack.fake.wait_for(lambda: cases(core)[0].close_reason == CloseReason.notice_inactive)


def test_rate_limited_and_failing_slack_calls_are_retried_once_delivered(
    slack: SlackUser, core: Core
) -> None:
    slack.fake.fail_next("chat.postMessage", 429, {"Retry-After": "1"})
    slack.fake.fail_next("chat.postMessage", 503)
    assert slack.command(OFFICER, "open").status_code == 200
    slack.fake.wait_for(lambda: bool(slack.fake.of("views.open")))
    assert slack.submit(OFFICER, slack.last_view(), OPEN_VALUES).status_code == 200

    def roots() -> list[dict[str, Any]]:
        return [c for c in slack.fake.of("chat.postMessage") if c["channel"] == "C0HOUCASES"
                and "thread_ts" not in c]

    def later_then_delivered() -> bool:
        # The failed root waits in the outbox (Retry-After, then back-off) on the core's clock.
        core.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
        with Session(core.engine) as session:
            rows = session.exec(select(OutboxMessage)).all()
        return len(roots()) >= 3 and bool(rows) and all(r.status == "sent" for r in rows)

    slack.fake.wait_for(later_then_delivered)
    # Three attempts reached Slack for the root message; exactly one was accepted.
    assert len(roots()) == 3
    with Session(core.engine) as session:
        root = (f"{cases(core)[0].id}:root", "slack")  # keyed per platform
        assert session.get(PlatformMessage, root) is not None


def test_approver_dm_updates_to_show_the_decision_and_home_lists_it(
    slack: SlackUser, core: Core
) -> None:
    case_id = open_case(slack, core)
    request_approval(slack, case_id)
    slack.button("approve", case_id)
    event = {"type": "event_callback", "team_id": "T1", "event_id": "Ev2",
             "event": {"type": "app_home_opened", "user": FRO, "tab": "home"}}
    slack.post(json.dumps(event), content_type="application/json")
    slack.fake.wait_for(lambda: bool(slack.fake.of("views.publish")))
    home = json.dumps(slack.fake.of("views.publish")[-1])
    assert f"Waiting for you: {case_id}" in home and '\\"approve\\"' in home
    step(slack, FRO, "deny", case_id, {"reason": "not enough basis for use"})
    slack.fake.wait_for(lambda: any(c["channel"].startswith("D") and "Denied by" in json.dumps(c)
                                    for c in slack.fake.of("chat.update")))
    dm_update = [c for c in slack.fake.of("chat.update") if c["channel"].startswith("D")][-1]
    assert not any(b["type"] == "actions" for b in dm_update["blocks"])
    slack.fake.wait_for(lambda: cases(core)[0].close_reason == CloseReason.denied)


def test_every_modal_opened_passes_block_kit_validation(slack: SlackUser, core: Core) -> None:
    from slack_sdk.models.views import View

    case_id = open_case(slack, core)
    step(slack, OFFICER, "validity_sent", case_id, {"sent_on": TODAY, "method": "x"})
    step(slack, OFFICER, "withdraw", case_id, {"reason": "duplicate"})
    for body in slack.fake.of("views.open"):
        View(**body["view"]).validate_json()


def test_usncb_callback_is_routed_by_the_server(slack: SlackUser) -> None:
    response = slack.http.post("/usncb/callback", content=b"{}")
    assert response.status_code == 404  # manual mode: the webhook channel is not enabled
    assert "not enabled" in response.json()["error"]
