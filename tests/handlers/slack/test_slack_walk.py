"""Issue 16 on the Slack surface, through signed requests: confirm dialogs, marks, refusals,
modals that ask what applies with the defaults their text announces; and the README's "what it
looks like" excerpt, generated from the real renderer."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app import load_roster_text
from bot.core.service import Core
from bot.messages import ActionId, ActionValue, FormId
from handlers.slack.blocks import form_view, message_blocks
from tests.handlers.slack.conftest import SlackUser
from tests.handlers.slack.test_slack_flow import open_case, request_approval, step
from tests.helpers import DESIGNEE, FRO, OFFICER, TODAY
from tests.helpers import open_case as core_open_case
from tests.helpers import press as core_press
from tests.helpers import to_approval as core_to_approval

README = Path(__file__).resolve().parents[3] / "README.md"


def posted_buttons(slack: SlackUser) -> list[dict[str, Any]]:
    found = []
    for call in slack.fake.calls:
        for block in call.body.get("blocks") or []:
            if block.get("type") == "actions":
                found += block["elements"]
    return found


def test_issue16_12_approve_deny_withdraw_carry_block_kit_confirm_dialogs(
        slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    request_approval(slack, case_id)
    slack.button("approve", case_id)
    by_action = {json.loads(b["value"])["action"]: b for b in posted_buttons(slack)}
    for action, label in (("approve", "Approve"), ("deny", "Deny"), ("withdraw", "Withdraw")):
        confirm = by_action[action].get("confirm")
        assert confirm is not None, action
        assert confirm["confirm"]["text"] == label and confirm["deny"]["text"] == "Cancel"
        assert case_id in confirm["text"]["text"]
    assert by_action["deny"]["confirm"]["style"] == "danger"
    assert "confirm" not in by_action["show_case"]


def test_issue16_6_7_second_approver_gets_a_refused_mark_and_who_decided(
        slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    request_approval(slack, case_id)
    approve = slack.button("approve", case_id)
    assert slack.click(FRO, approve).status_code == 200
    slack.fake.wait_for(lambda: any("✅ 3. Supervisory approval" in json.dumps(
        c.body, ensure_ascii=False) for c in slack.fake.calls))
    assert slack.click(DESIGNEE, approve).status_code == 200

    def refusal() -> list[str]:
        return [json.dumps(c.body, ensure_ascii=False) for c in slack.fake.calls
                if "already done" in json.dumps(c.body, ensure_ascii=False)]
    slack.fake.wait_for(lambda: bool(refusal()))
    assert "🚫 Not done" in refusal()[-1] and FRO in refusal()[-1]


def test_issue16_2_3_modal_defaults_and_dependent_fields(slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    request_approval(slack, case_id)
    step(slack, FRO, "approve", case_id)
    step(slack, OFFICER, "documents_sent", case_id,
         {"documents": ["warrant"], "sent_on": TODAY, "method": "x"})
    views = [c["view"] for c in slack.fake.of("views.open")]
    documents = next(v for v in views
                     if any(b.get("block_id") == "documents" for b in v["blocks"]))
    checkboxes = next(b for b in documents["blocks"] if b.get("block_id") == "documents")
    assert len(checkboxes["element"]["initial_options"]) == 5  # the five the text lists
    assert checkboxes.get("optional") is not True  # required, and Slack says so
    assert any("```" in (b.get("text") or {}).get("text", "") for b in documents["blocks"])
    review = next(v for v in views if v["title"]["text"] == "Preliminary review")
    serious = next(b for b in review["blocks"] if b.get("block_id") == "serious_crime")
    assert serious["optional"] is True and "when it applies" in serious["hint"]["text"]
    # A choice typed as its printed number is taken on every surface.
    step(slack, OFFICER, "documents_answer", case_id,
         {"answer": "received", "received": ["warrant"], "answered_on": TODAY})
    opened = len(slack.fake.of("views.open"))
    assert slack.click(OFFICER, slack.button("documents_review", case_id)).status_code == 200
    slack.fake.wait_for(lambda: len(slack.fake.of("views.open")) > opened)
    response = slack.submit(OFFICER, slack.last_view(), {"indications": "2",
                                                         "better_evidence": "1"})
    assert "errors" not in (response.json() if response.content not in (b"", b"{}") else {})


# --- the README's "what it looks like" ------------------------------------------------------

PREVIEW = re.compile(r"(<!-- slack-preview: begin -->\n)(.*?)(<!-- slack-preview: end -->)",
                     re.S)


def _blocks(blocks: list[dict[str, Any]]) -> str:
    return "[\n" + ",\n".join(json.dumps(b, ensure_ascii=False) for b in blocks) + "\n]"


def preview(core: Core) -> str:
    """Block Kit of a case's root, its current prompt, the approval DM and a modal, rendered
    by the same functions the Slack adapter uses."""
    case_id = core_open_case(core)
    core_to_approval(core, case_id)
    assert core_press(core, OFFICER, case_id, ActionId.request_approval).ok
    from sqlmodel import Session, col, select

    from bot.messages import Message
    from storage.models import OutboxMessage

    latest: dict[str, Message] = {}
    with Session(core.engine) as session:
        for row in session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))):
            message = Message.from_dict(row.payload)
            latest[message.key or f"#{row.id}"] = message
    root = latest[f"{case_id}:root"]
    prompt = latest[f"{case_id}:approval"]
    dm = next(m for k, m in latest.items() if ":approval:" in k)
    other = core_open_case(core, notice_reference="B-2/2026")
    form = core.click(actor=OFFICER, value=ActionValue(ActionId.validity_sent, other)).form
    assert form is not None and form.form_id is FormId.validity_sent
    modal = form_view(form, metadata={"channel": "C0HOUCASES"})
    parts = [
        ("The case's root message in the AOR channel", message_blocks(root)),
        ("The current step in its thread (waiting for the approver)", message_blocks(prompt)),
        ("The approval request, by DM to the FRO (Approve and Deny ask to confirm)",
         message_blocks(dm)),
        ("A step's modal: the request to copy, the remembered procedure, today's date",
         modal["blocks"]),
    ]
    return "".join(f"{title}:\n\n```json\n{_blocks(blocks)}\n```\n\n" for title, blocks in parts)


def test_readme_slack_preview_is_what_the_renderer_produces(core: Core) -> None:
    text = README.read_text("utf-8")
    found = PREVIEW.search(text)
    assert found is not None, "README lacks the slack-preview markers"
    expected = preview(core)
    if os.environ.get("NOTICEBOT_WRITE_README") == "1":  # regenerate after a renderer change
        README.write_text(text[:found.start(2)] + expected + text[found.end(2):], "utf-8")
        return
    assert found.group(2) == expected, "run with NOTICEBOT_WRITE_README=1 to regenerate"



def test_issue16_5_notice_list_carries_each_cases_current_buttons(
        slack: SlackUser, core: Core) -> None:
    case_id = open_case(slack, core)
    assert slack.command(OFFICER, "list").status_code == 200

    def listed() -> list[dict[str, Any]]:
        return [json.loads(element["value"]) for body in slack.fake.of("response_url")
                for block in body.get("blocks") or [] if block.get("type") == "actions"
                for element in block["elements"]]
    slack.fake.wait_for(lambda: any(b["action"] == "validity_sent" for b in listed()))
    assert {"action": "validity_sent", "case_id": case_id, "ref": None} in listed()


OWN_IDS_ROSTER = """
[[aor]]
id = "HOU"
name = "Houston ERO"
supervisors = ["sam"]
channel = "C0HOUCASES"

[[person]]
user = "olivia"
slack = "U0OLIVIA"
name = "Olivia Officer"
email = "olivia@example.gov"
roles = ["officer"]
aor = "HOU"
training_completed = RECENT_DATE

[[person]]
user = "sam"
slack = "U0SAMSLACK"
name = "Sam Supervisor"
email = "sam@example.gov"
roles = ["supervisor"]
aor = "HOU"
"""


def test_a_refused_submit_names_people_by_their_slack_ids(slack: SlackUser, core: Core) -> None:
    # A roster with noticebot's own person ids: a refusal's mention must become the person's
    # Slack id, or Slack shows "<@olivia>" raw.
    recent = (core.clock.now().date() - timedelta(days=30)).isoformat()
    load_roster_text(core, OWN_IDS_ROSTER.replace("RECENT_DATE", recent), actor="admin",
                     source="test")
    case_id = core_open_case(core, actor="olivia")
    form = core.click(actor="olivia", value=ActionValue(ActionId.validity_sent, case_id)).form
    assert form is not None
    view = form_view(form, metadata={"channel": "C0HOUCASES"})
    answer = slack.submit("U0SAMSLACK", view, {"sent_on": TODAY, "method": "e-mail"}).json()
    shown = json.dumps(answer["view"])
    assert "Not done" in shown and "<@U0OLIVIA>" in shown and "<@olivia>" not in shown
