"""The canonical case walked through Teams activities: `notice open` in the 1:1 chat, the form
as a dialog (inline errors, values kept), each checklist step from its card, the approval as a
1:1 card with Approve (confirmed in a dialog) and Deny (a dialog), with the same assertions as
the Slack walk: one case per replayed submit, no duplicate decision on a double click, refusals
recorded for the wrong users, no subject detail in any channel card, every card valid."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.core.service import Core
from storage.models import Case, RecordEntry, Stage
from tests.handlers.teams.card_schema import problems
from tests.handlers.teams.conftest import CASES_CHANNEL, OIDS, STRANGER, TeamsUser
from tests.handlers.teams.fake_teams import activity
from tests.helpers import (
    CLEAN_REVIEW,
    DESIGNEE,
    FRO,
    MANAGER,
    OFFICER,
    OFFICER_LAPSED,
    SUBJECT,
    TODAY,
    case_row,
    entries,
)

OPEN_VALUES = {"notice_type": "red_notice", "intended_use": "immigration",
               "extradition_pending": "no", **SUBJECT}


def cases(core: Core) -> list[Case]:
    with Session(core.engine) as session:
        return list(session.exec(select(Case)))


def as_strings(values: dict[str, Any]) -> dict[str, str]:
    """What Teams sends for each input: strings, several choices comma-separated."""
    return {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in values.items()}


def dialog(response: Any) -> dict[str, Any] | str:
    """A task/fetch or task/submit answer: the dialog's card, or its closing message."""
    assert response.status_code == 200, response.text
    task = response.json()["task"]
    if task["type"] == "message":
        return str(task["value"])
    card = task["value"]["card"]["content"]
    assert problems(card) == [], problems(card)
    return dict(card)


def submit_data(card: dict[str, Any]) -> dict[str, Any]:
    return dict(card["actions"][0]["data"])


def buttons(teams: TeamsUser, prefix: str = "") -> dict[str, dict[str, Any]]:
    """The latest card button for each action, as posted to conversations starting `prefix`."""
    found: dict[str, dict[str, Any]] = {}
    for card in teams.fake.cards(prefix):
        for action in card.get("actions") or []:
            data = action.get("data") or {}
            value = data.get("value") if "value" in data else data
            if isinstance(value, dict) and "action" in value:
                found[value["action"]] = action
    return found


def press(teams: TeamsUser, person: str, action: str, values: dict[str, Any] | None = None,
          *, prefix: str = "") -> str | dict[str, Any]:
    """Press the card's button; fill and submit the dialog it opens, if any."""
    teams.relay()
    button = buttons(teams, prefix)[action]
    if button["type"] == "Action.Execute":
        response = teams.execute(person, button["data"])
        assert response.status_code == 200, response.text
        return str(response.json()["value"])
    shown = dialog(teams.fetch(person, button["data"]))
    if isinstance(shown, str) or values is None:
        return shown
    return dialog(teams.submit(person, {**submit_data(shown), **as_strings(values)}))


def open_case(teams: TeamsUser, core: Core) -> str:
    assert teams.say(OFFICER, "notice open").status_code == 200
    offer = teams.fake.cards(f"a:dm-{OIDS[OFFICER]}")[-1]
    assert problems(offer) == []
    form = dialog(teams.fetch(OFFICER, offer["actions"][0]["data"]))
    assert isinstance(form, dict)
    data = submit_data(form)
    # Where the case was opened comes from the signed activity, never from what the card sends.
    assert "channel" not in data["nb"] and "channel" not in offer["actions"][0]["data"]
    # Inline errors: the dialog comes back with the values kept and the error in red.
    partial = {**OPEN_VALUES, "subject_name": ""}
    again = dialog(teams.submit(OFFICER, {**data, **as_strings(partial)}))
    assert isinstance(again, dict)
    kept = {i["id"]: i.get("value") for i in again["body"] if "id" in i}
    assert kept["notice_reference"] == SUBJECT["notice_reference"]
    assert any(i.get("color") == "Attention" for i in again["body"])
    assert cases(core) == []
    done = dialog(teams.submit(OFFICER, {**submit_data(again), **as_strings(OPEN_VALUES)}))
    assert isinstance(done, str) and "opened" in done
    # Teams re-sends an invoke it thinks was lost; the officer submits again: one case.
    dialog(teams.submit(OFFICER, {**submit_data(again), **as_strings(OPEN_VALUES)}))
    dialog(teams.submit(OFFICER, {**submit_data(again), **as_strings(
        {**OPEN_VALUES, "notes": "changed my mind"})}))
    assert len(cases(core)) == 1
    return cases(core)[0].id


def refusals(core: Core, actor: str) -> list[RecordEntry]:
    # A Teams user no person has is recorded under their platform-qualified id.
    recorded_as = f"teams:{actor}" if actor == STRANGER else actor
    return entries(core, kind="refusal", actor=recorded_as)


def test_o21_canonical_case_walked_through_teams(teams: TeamsUser, core: Core) -> None:
    case_id = open_case(teams, core)
    teams.relay()
    roots = [c for c in teams.fake.posts()
             if c.path == f"/v3/conversations/{CASES_CHANNEL}/activities"]
    assert len(roots) == 1  # one root card; every step a reply in its thread
    root = teams.roots[case_id]
    assert any(f"{CASES_CHANNEL};messageid={root}" in c.path for c in teams.fake.posts())
    press(teams, OFFICER, "validity_sent", {"sent_on": TODAY, "method": "e-mail"})
    press(teams, OFFICER, "validity_answer", {"status": "active", "answered_on": TODAY})
    assert case_row(core, case_id).stage == Stage.review
    press(teams, OFFICER, "review", CLEAN_REVIEW)
    assert case_row(core, case_id).stage == Stage.approval
    assert "Not done" not in press(teams, OFFICER, "request_approval")
    teams.relay()
    fro_chat = f"a:dm-{OIDS[FRO]}"
    assert "approve" in buttons(teams, fro_chat)  # the request came as a 1:1 card

    # The officer, a manager, a lapsed officer and someone not on the roster press Approve:
    # refused at once (no "Are you sure?" first), and on the record.
    for wrong in (OFFICER, MANAGER, OFFICER_LAPSED, STRANGER):
        before = len(refusals(core, wrong))
        said = press(teams, wrong, "approve", prefix=fro_chat)
        assert isinstance(said, str) and said.startswith("Not done"), said
        assert len(refusals(core, wrong)) == before + 1
    assert case_row(core, case_id).stage == Stage.approval

    # The FRO confirms; Teams re-sends the submit, and the FRO clicks twice: one decision.
    confirm = press(teams, FRO, "approve", prefix=fro_chat)
    assert isinstance(confirm, dict) and "Approve" in json.dumps(confirm)
    first = dialog(teams.submit(FRO, submit_data(confirm)))
    assert isinstance(first, str) and not first.startswith("Not done"), first
    dialog(teams.submit(FRO, submit_data(confirm)))
    second = press(teams, FRO, "approve", prefix=fro_chat)
    assert isinstance(second, str) and second.startswith("Not done")  # already decided
    assert case_row(core, case_id).stage == Stage.documents
    decisions = [e for e in entries(core, case_id=case_id, kind="click", action="click.approve",
                                    actor=FRO)]
    assert len(decisions) == 1  # the decision, not more

    # §5.1(4) through dialogs: several choices ticked by default, a dependent question, yes/no.
    press(teams, OFFICER, "documents_sent", {"documents": ["warrant", "charging"],
                                             "sent_on": TODAY, "method": "USNCB e-mail"})
    press(teams, OFFICER, "documents_answer", {"answer": "received", "received": ["warrant"],
                                               "answered_on": TODAY})
    press(teams, OFFICER, "documents_review", {"indications": "no", "better_evidence": "yes"})
    assert case_row(core, case_id).stage == Stage.use_authorization
    teams.relay()

    # No subject detail in any channel card; every card valid against 1.5.
    channel_cards = teams.fake.cards(CASES_CHANNEL)
    assert channel_cards
    for card in teams.fake.cards():
        assert problems(card) == [], problems(card)
    shown = json.dumps(channel_cards, ensure_ascii=False)
    for detail in SUBJECT.values():
        assert detail not in shown


def test_a_channel_command_answers_only_in_the_clickers_dialog(
        teams: TeamsUser, core: Core) -> None:
    case_id = open_case(teams, core)
    assert teams.say(OFFICER, "<at>noticebot</at> notice show " + case_id,
                     channel=True).status_code == 200
    offer = teams.fake.cards(CASES_CHANNEL)[-1]
    assert SUBJECT["subject_name"] not in json.dumps(offer)
    shown = dialog(teams.fetch(OFFICER, offer["actions"][0]["data"]))
    assert isinstance(shown, dict)
    # The officer is authorized: the dialog (private) may show the subject.
    assert SUBJECT["subject_name"] in json.dumps(shown, ensure_ascii=False)


def _dialog_buttons(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A dialog's buttons by title (a dialog's card can only submit: `nb_press`)."""
    return {a["title"]: a for item in shown["body"] if item["type"] == "ActionSet"
            for a in item["actions"]}


def test_buttons_in_a_dialog_answer_in_the_dialog(teams: TeamsUser, core: Core) -> None:
    """A list opened from a channel's Open button has its buttons: each answers in the dialog
    (the next form, a confirmation, a case's details), checked by the core like any other."""
    case_id = open_case(teams, core)
    assert teams.say(OFFICER, "<at>noticebot</at> notice list", channel=True).status_code == 200
    shown = dialog(teams.fetch(OFFICER, teams.fake.cards(CASES_CHANNEL)[-1]["actions"][0]
                               ["data"]))
    assert isinstance(shown, dict) and case_id in json.dumps(shown)
    sent = _dialog_buttons(shown)["Record request sent"]
    assert sent["type"] == "Action.Submit" and sent["data"]["action"] == "nb_press"
    # Someone else pressing it is refused in the dialog, and that is recorded.
    before = len(refusals(core, FRO))
    refused = dialog(teams.submit(FRO, sent["data"]))
    assert isinstance(refused, str) and refused.startswith("Not done")
    assert len(refusals(core, FRO)) == before + 1
    # The officer gets the step's form in the dialog; Teams re-sends a press whose answer it
    # lost: the form is shown again (showing it did nothing).
    form = dialog(teams.submit(OFFICER, sent["data"]))
    assert isinstance(form, dict) and problems(form) == []
    again = dialog(teams.submit(OFFICER, sent["data"]))
    assert isinstance(again, dict)
    assert [i["id"] for i in again["body"] if "id" in i] == \
        [i["id"] for i in form["body"] if "id" in i] != []
    done = dialog(teams.submit(OFFICER, {**submit_data(form), "sent_on": TODAY,
                                         "method": "USNCB e-mail"}))
    assert isinstance(done, str) and not done.startswith("Not done"), done
    assert len(entries(core, action="form.validity_sent", actor=OFFICER)) == 1
    # A press that acts (here refused: not this case's step now) is taken once: Teams sending
    # it again gets "Already done." and nothing more is recorded.
    acting = {"action": "nb_press", "nb": {"nonce": "n-1", "value": {
        "action": "request_approval", "case_id": case_id, "ref": None}, "confirm": None}}
    first = dialog(teams.submit(OFFICER, acting))
    assert isinstance(first, str) and first.startswith("Not done")
    recorded = len(entries(core, actor=OFFICER))
    assert dialog(teams.submit(OFFICER, acting)) == "Already done."
    assert len(entries(core, actor=OFFICER)) == recorded


def test_every_notice_command_has_its_teams_twin(teams: TeamsUser, core: Core) -> None:
    def asked() -> int:
        return len([e for e in entries(core, actor=OFFICER) if e.kind in ("command", "event")])

    for command in ("help", "list", "show", "training", "delegate", "reassign", "hold", "digest",
                    "home"):
        before, posts = asked(), len(teams.fake.posts())
        assert teams.say(OFFICER, f"notice {command}").status_code == 200
        assert len(teams.fake.posts()) > posts, command  # answered in the 1:1 chat
        assert asked() == before + 1, command  # by the core, on the record
    home = teams.fake.cards(f"a:dm-{OIDS[OFFICER]}")[-1]
    assert problems(home) == []


def to_approval(teams: TeamsUser, core: Core) -> str:
    case_id = open_case(teams, core)
    press(teams, OFFICER, "validity_sent", {"sent_on": TODAY, "method": "e-mail"})
    press(teams, OFFICER, "validity_answer", {"status": "active", "answered_on": TODAY})
    press(teams, OFFICER, "review", CLEAN_REVIEW)
    return case_id


def test_a_click_teams_delivers_twice_is_acted_on_once(teams: TeamsUser, core: Core) -> None:
    case_id = to_approval(teams, core)
    teams.relay()
    button = buttons(teams)["request_approval"]
    assert button["type"] == "Action.Execute"
    first = teams.execute(OFFICER, button["data"], activity_id="retry-1")
    again = teams.execute(OFFICER, button["data"], activity_id="retry-1")
    assert first.json()["value"] != again.json()["value"] == "Already done."
    requested = entries(core, case_id=case_id, kind="click", action="click.request_approval")
    assert len(requested) == 1


def test_o21_deny_asks_for_the_reason_in_a_dialog(teams: TeamsUser, core: Core) -> None:
    case_id = to_approval(teams, core)
    press(teams, OFFICER, "request_approval")
    teams.relay()
    fro_chat = f"a:dm-{OIDS[FRO]}"
    form = press(teams, FRO, "deny", prefix=fro_chat)
    assert isinstance(form, dict)
    assert [i["id"] for i in form["body"] if "id" in i] == ["reason"]
    # The button's warning (Slack asks it before the form) heads the form.
    assert f"{case_id} will then be closed" in json.dumps(form)
    empty = dialog(teams.submit(FRO, {**submit_data(form), "reason": ""}))
    assert isinstance(empty, dict)  # the same dialog again, with the error under the field
    assert any(i.get("color") == "Attention" for i in empty["body"])
    assert case_row(core, case_id).stage == Stage.approval
    # Submitted again as it was (the error off-screen): the same error, not "Already done."
    again = dialog(teams.submit(FRO, {**submit_data(empty), "reason": ""}))
    assert isinstance(again, dict) and any(i.get("color") == "Attention" for i in again["body"])
    assert case_row(core, case_id).stage == Stage.approval
    reason = "The notice rests on a charge the directive does not allow us to act on."
    done = dialog(teams.submit(FRO, {**submit_data(empty), "reason": reason}))
    assert isinstance(done, str) and not done.startswith("Not done"), done
    assert case_row(core, case_id).stage == Stage.closed


def test_a_stranger_pressing_a_plain_button_is_refused_and_recorded(
        teams: TeamsUser, core: Core) -> None:
    to_approval(teams, core)
    teams.relay()
    button = buttons(teams)["request_approval"]
    response = teams.execute(STRANGER, button["data"])
    assert response.json()["value"].startswith("Not done")
    # The reason names the case's officer as a card would, not in a mention's raw form.
    assert response.json()["value"] == ("Not done: Only the case officer (Olivia Officer) can "
                                        "do this step of RN-2026-0001.")
    assert len(refusals(core, STRANGER)) == 1


OUTSIDERS = (FRO, MANAGER, OFFICER_LAPSED, DESIGNEE, STRANGER)


def test_r4_other_users_are_refused_at_a_dialog_step_and_each_refusal_recorded(
        teams: TeamsUser, core: Core) -> None:
    """As on Slack: the validity step's button opens a dialog; anyone but the case's officer
    is refused before any form is shown, and the officer's dialog submitted by anyone else is
    refused too. Each refusal is recorded, the case does not move, and the officer's own
    submit still acts."""
    case_id = open_case(teams, core)
    teams.relay()
    button = buttons(teams)["validity_sent"]
    assert button["type"] == "Action.Submit"  # a dialog (task/fetch)
    for outsider in OUTSIDERS:
        shown = dialog(teams.fetch(outsider, button["data"]))
        assert isinstance(shown, str) and shown.startswith("Not done"), (outsider, shown)
    form = dialog(teams.fetch(OFFICER, button["data"]))
    assert isinstance(form, dict)
    filled = {**submit_data(form), **as_strings({"sent_on": TODAY, "method": "e-mail"})}
    for outsider in OUTSIDERS:
        said = dialog(teams.submit(outsider, filled))
        assert isinstance(said, str) and said.startswith("Not done"), (outsider, said)
    assert {o: len(refusals(core, o)) for o in OUTSIDERS} == dict.fromkeys(OUTSIDERS, 2)
    assert entries(core, case_id=case_id, kind="state", action="usncb.request_sent") == []
    done = dialog(teams.submit(OFFICER, filled))
    assert isinstance(done, str) and not done.startswith("Not done"), done
    assert len(entries(core, case_id=case_id, kind="state", action="usncb.request_sent")) == 1


def test_a_click_from_no_user_of_the_tenant_is_refused_and_recorded(
        teams: TeamsUser, core: Core) -> None:
    # No Entra object id on the activity (not a member of the tenant): nobody to act as.
    case_id = to_approval(teams, core)
    teams.relay()
    button = buttons(teams)["request_approval"]
    response = teams.execute("", button["data"])
    assert response.json()["value"].startswith("Not done")
    refused = entries(core, kind="refusal", actor="teams:29:nobody")
    assert [e.action for e in refused] == ["click.unknown_user"]
    assert case_row(core, case_id).stage == Stage.approval


def test_a_forged_button_is_refused_and_recorded(teams: TeamsUser, core: Core) -> None:
    response = teams.execute(OFFICER, {"action": "approve", "case_id": 7, "ref": "x"})
    assert response.json()["value"].startswith("Not done")
    assert [e.action for e in refusals(core, OFFICER)] == ["click.unreadable"]


MISSING = object()


@pytest.mark.parametrize(("name", "value", "action"), [
    ("adaptiveCard/action", MISSING, "click.unreadable"),
    ("adaptiveCard/action", "approve", "click.unreadable"),
    ("adaptiveCard/action", {"action": "approve"}, "click.unreadable"),
    ("adaptiveCard/action", {"action": {"verb": "nb", "data": {}}}, "click.unreadable"),
    ("adaptiveCard/action", {"action": {"type": "Action.Submit", "data": {}}},
     "click.unreadable"),
    ("adaptiveCard/action", {"action": {"type": "Action.Execute", "data": "approve"}},
     "click.unreadable"),
    ("adaptiveCard/action", {"action": {"type": "Action.Execute", "data": [1]}},
     "click.unreadable"),
    ("adaptiveCard/action", {"action": {"type": "Action.Execute", "verb": "nb"}},
     "click.unreadable"),  # no data
    ("adaptiveCard/action", {"action": {"type": "Action.Execute", "data": {}},
                             "trigger": "sometimes"}, "click.unreadable"),
    ("task/fetch", MISSING, "click.unreadable"),  # a dialog's button that could not be read
    ("task/fetch", [1, 2], "click.unreadable"),
    ("task/submit", MISSING, "form.unreadable"),
    ("task/submit", "x", "form.unreadable"),
    ("task/fetch", {"context": "x"}, "click.unreadable"),
], ids=lambda v: "missing" if v is MISSING else None)
def test_an_invoke_the_sdk_could_not_parse_is_refused_and_recorded(
        teams: TeamsUser, core: Core, name: str, value: object, action: str) -> None:
    """The SDK answered these 500 ("Unable to reach app") before any handler ran, and nothing
    was recorded: now they are refused like any unreadable button or form."""
    body = activity("invoke", object_id=OIDS[OFFICER], name=name, service_url=teams.fake.url,
                    value=None if value is MISSING else value)
    if value is MISSING:
        body.pop("value", None)
    response = teams.post(body)
    assert response.status_code == 200, response.text
    assert "Not done" in response.text
    assert [e.action for e in refusals(core, OFFICER)] == [action]


def _from_another_process(data: dict[str, Any]) -> dict[str, Any]:
    """A dialog's submit data as a process that did not show it receives it: a nonce it does
    not know (another worker, or before a restart)."""
    return {**data, "nb": {**data["nb"], "nonce": "0" * 32}}


def test_a_dialog_shown_by_another_process_is_asked_for_again_without_acting(
        teams: TeamsUser, core: Core) -> None:
    case_id = to_approval(teams, core)
    press(teams, OFFICER, "request_approval")
    teams.relay()
    form = press(teams, FRO, "deny", prefix=f"a:dm-{OIDS[FRO]}")
    assert isinstance(form, dict)
    reason = "The notice rests on a charge the directive does not allow us to act on."
    done = dialog(teams.submit(FRO, {**_from_another_process(submit_data(form)),
                                     "reason": reason}))
    assert isinstance(done, str) and not done.startswith("Not done"), done
    assert case_row(core, case_id).stage == Stage.closed
    # One deny click on the record (the press), and a read for the form asked again.
    assert len(entries(core, case_id=case_id, action="click.deny")) == 1
    assert entries(core, case_id=case_id, action="button.previewed")


def test_a_forged_origin_that_opens_no_form_does_nothing(teams: TeamsUser,
                                                         core: Core) -> None:
    """The origin comes back from the client: one naming a plain button (request approval)
    must not carry it out while the form is being asked for again."""
    case_id = to_approval(teams, core)
    teams.relay()
    plain = buttons(teams)["request_approval"]["data"]
    review_form = {"action": "nb_submit", "nb": {
        "nonce": "0" * 32, "form": "review", "case_id": case_id, "ref": None,
        "origin": {"value": plain}}}
    said = dialog(teams.submit(OFFICER, review_form))
    assert isinstance(said, str) and said.startswith("Not done")
    assert not entries(core, case_id=case_id, action="click.request_approval")
    assert not entries(core, case_id=case_id, action="approval.requested")
    assert case_row(core, case_id).stage == Stage.approval
