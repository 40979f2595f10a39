"""Adaptive Cards from neutral messages and forms: valid 1.5 structure, mentions as names,
dialog buttons where a form or a confirmation follows, and answers read back as the core
expects them."""

from __future__ import annotations

import copy
import json

import pytest

from bot.core.forms import open_case_form
from bot.messages import (
    Action,
    ActionId,
    ActionValue,
    Confirm,
    FieldKind,
    Form,
    FormField,
    FormId,
    Mark,
    Message,
    Option,
    ShownWhen,
    Style,
    mention,
)
from handlers.teams import cards
from handlers.teams.inbound import command_text
from tests.handlers.teams.card_schema import declared_problems, problems

NAMES = {"U0SUP1": "Sam Supervisor"}


def name(person: str) -> str:
    return NAMES.get(person, "someone")


def test_a_full_message_is_a_valid_card_with_names_for_mentions() -> None:
    message = Message(
        title=f"Approval for {mention('U0SUP1')}", text=f"{mention('U0SUP1')}, please decide.",
        section="§5.1(3)", fields=(("Case", "RN-2026-0001"),), notes=("Asked today",),
        mark=Mark.waiting, preformatted="REQUEST TEXT",
        actions=(Action("Approve", ActionValue(ActionId.approve, "RN-2026-0001", 3),
                        Style.primary, Confirm("Approve use?", "Sure?", "Approve")),
                 Action("Deny", ActionValue(ActionId.deny, "RN-2026-0001", 3), Style.danger),
                 Action("Request approval", ActionValue(ActionId.request_approval, "RN-1")),
                 Action("Show", ActionValue(ActionId.show_case, "RN-1"))))
    card = cards.message_card(message, name)
    assert problems(card) == []
    text = json.dumps(card, ensure_ascii=False)
    assert "Sam Supervisor" in text and "<@" not in text and "⏳" in text
    kinds = {a["title"]: a for a in card["actions"]}
    # A confirmation, a form and a case's details each need a dialog; a plain click does not.
    for title in ("Approve", "Deny", "Show"):
        assert kinds[title]["type"] == "Action.Submit"
        assert kinds[title]["data"]["msteams"] == {"type": "task/fetch"}
    assert kinds["Approve"]["data"]["confirm"]["confirm"] == "Approve"
    execute = kinds["Request approval"]
    assert execute["type"] == "Action.Execute" and execute["verb"] == cards.VERB
    assert ActionValue.from_dict(execute["data"]) == ActionValue(ActionId.request_approval,
                                                                 "RN-1")
    assert kinds["Approve"]["style"] == "positive" and kinds["Deny"]["style"] == "destructive"
    # The activity's plain text (and an invoke's one-line answer) names people too.
    assert cards.summary(message, name) == "Approval for Sam Supervisor"
    assert cards.summary(Message(text=f"{mention('U0SUP1')} now has it."), name) == \
        "Sam Supervisor now has it."


def test_a_marks_symbol_leads_the_title_once() -> None:
    """The core's titles carry their mark's symbol; a title without one gets it."""
    for title in ("▶ 1. Verify validity", "1. Verify validity"):
        [heading] = cards.message_body(Message(title=title, text="", mark=Mark.current),
                                       name)
        assert heading["text"] == "▶ 1. Verify validity"
        assert heading["color"] == "Accent"


def test_every_button_that_can_open_a_form_opens_a_dialog() -> None:
    for action in ActionId:
        button = cards.button(Action("x", ActionValue(action, "RN-1")))
        expects_dialog = action.value in FormId.__members__ or action is ActionId.show_case
        assert (button["type"] == "Action.Submit") is expects_dialog, action


EVERY_KIND = Form(FormId.review, "Every kind", fields=(
    FormField("summary", "Summary", hint="short"),
    FormField("details", "Details", FieldKind.long_text, required=False),
    FormField("on", "On", FieldKind.date),
    FormField("pick", "Pick", FieldKind.choice,
              options=tuple(Option(f"v{i}", f"Label {i}") for i in range(7))),
    FormField("several", "Several", FieldKind.multi_choice,
              options=(Option("a", "A"), Option("b", "B")), initial=("a", "b")),
    FormField("agree", "Agree", FieldKind.yes_no),
    FormField("why", "Why", when=ShownWhen("agree", ("no",))),
), section="§5.1(2)", intro="Answer all", preformatted="COPY ME")


def test_a_form_with_every_field_kind_is_a_valid_dialog() -> None:
    card = cards.form_card(EVERY_KIND, submit_data={"action": cards.SUBMIT}, name=name)
    assert problems(card) == []
    inputs = {i["id"]: i for i in card["body"] if "id" in i}
    assert inputs["several"]["isMultiSelect"] is True and inputs["several"]["value"] == "a,b"
    assert inputs["pick"]["style"] == "compact"
    assert inputs["agree"]["choices"] == [{"title": "Yes", "value": "yes"},
                                          {"title": "No", "value": "no"}]
    assert inputs["why"]["isRequired"] is False  # asked only when agree is "no": core checks
    assert card["actions"][0]["data"] == {"action": cards.SUBMIT}


def test_errors_show_under_their_fields_and_the_values_are_kept() -> None:
    values = {"summary": "kept", "several": ["b"], "agree": "no"}
    card = cards.form_card(EVERY_KIND, submit_data={}, name=name, values=values,
                           errors={"why": "Say why", "form": "Something else"})
    assert problems(card) == []
    body = card["body"]
    assert body[0]["color"] == "Attention" and "Something else" in body[0]["text"]
    inputs = {i["id"]: i for i in body if "id" in i}
    assert inputs["summary"]["value"] == "kept" and inputs["several"]["value"] == "b"
    why = next(i for i, item in enumerate(body) if item.get("id") == "why")
    assert body[why + 1] == cards.text_block("Say why", color="Attention", spacing="None")


def test_answers_are_read_back_as_the_core_reads_them() -> None:
    data = {"summary": "s", "details": "", "several": "a,b", "agree": "yes",
            "nb": {"nonce": "n"}, "action": cards.SUBMIT}
    values = cards.read_values(EVERY_KIND, data)
    assert values == {"summary": "s", "details": None, "on": None, "pick": None,
                      "several": ["a", "b"], "agree": "yes", "why": None}
    with pytest.raises(ValueError):
        cards.read_values(EVERY_KIND, {"summary": ["not", "text"]})


def test_the_open_case_form_is_a_valid_dialog() -> None:
    assert problems(cards.form_card(open_case_form(), submit_data={}, name=name)) == []


@pytest.mark.parametrize(("text", "command"), [
    ("<at>noticebot</at> notice open", "open"),
    ("notice show RN-2026-0001", "show RN-2026-0001"),
    ("<p><at>noticebot</at>&nbsp;Notice   list</p>", "list"),
    ("notice", ""),
    ("notice\xa0hold\u00a0RN-1", "hold RN-1"),
    ("hello", None),
    ("noticeboard", None),
])
def test_notice_commands_are_read_from_messages(text: str, command: str | None) -> None:
    assert command_text(text) == command


def test_the_card_check_rejects_what_the_sdk_declarations_do_not_allow() -> None:
    card = cards.message_card(Message(title="Done", text="x", mark=Mark.good, actions=(
        Action("Request approval", ActionValue(ActionId.request_approval, "RN-1")),)), name)
    assert problems(card) == []
    misspelt, oversized, restyled = (copy.deepcopy(card) for _ in range(3))
    misspelt["body"][0]["colour"] = "Good"
    oversized["body"][0]["size"] = "Huge"
    restyled["actions"][0]["style"] = "primary"  # Slack's name, not Teams'
    assert any("TextBlock declares no colour" in p for p in declared_problems(misspelt))
    assert any("TextBlock size" in p for p in declared_problems(oversized))
    assert any("Action.Execute style" in p for p in declared_problems(restyled))
