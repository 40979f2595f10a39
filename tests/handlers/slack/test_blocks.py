"""Block Kit rendering stays within Slack's limits, whatever the content."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import yaml
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.core.forms import open_case_form
from bot.core.workflow import build_form
from bot.messages import Action, ActionId, ActionValue, FormId, Message
from handlers.slack.blocks import fallback_text, form_view, message_blocks, read_view_state
from storage.models import Case, IntendedUse, NoticeType


def test_long_text_is_split_and_too_many_blocks_are_truncated_with_a_note() -> None:
    message = Message(
        title="T" * 400,
        text="\n".join("x" * 2990 for _ in range(60)),
        fields=tuple((f"f{i}", "v" * 2500) for i in range(25)),
        actions=tuple(Action("A" * 100, ActionValue(ActionId.show_case, f"RN-2026-{i:04d}"))
                      for i in range(60)),
        notes=tuple("n" * 10 for _ in range(15)),
    )
    blocks = message_blocks(message)
    assert len(blocks) == 50
    assert "truncated" in str(blocks[-1])
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
    assert len(fallback_text(message)) <= 3000


def test_every_form_renders_as_a_valid_modal() -> None:
    case = Case(id="RN-2026-0001", aor_id="HOU", officer="U0OFF1", channel="C1",
                notice_type=NoticeType.diffusion, intended_use=IntendedUse.both,
                opened_at=datetime(2026, 11, 23, tzinfo=UTC), notice_reference="r",
                subject_name="s", issuing_country="MX", offense_summary="o")
    forms = [open_case_form()] + [
        build_form(form_id, case, today=date(2026, 11, 23), ref=7,
                   automatic=("diffusion", "watchlist"))
        for form_id in FormId if form_id is not FormId.open_case
    ]
    for form in forms:
        view = form_view(form, metadata={"channel": "C1"})
        View(**view).validate_json()
        assert len(view["title"]["text"]) <= 24
        for block in view["blocks"]:
            for option in block.get("element", {}).get("options", []):
                assert len(option["text"]["text"]) <= 75


def test_modal_state_reads_back_each_field_kind() -> None:
    view = form_view(build_form(FormId.documents_answer, Case(
        id="RN-1", aor_id="A", officer="U1", channel="C", notice_type=NoticeType.red_notice,
        intended_use=IntendedUse.enforcement, opened_at=None,  # type: ignore[arg-type]
        notice_reference="r", subject_name="s", issuing_country="MX", offense_summary="o"),
        today=date(2026, 11, 23), ref=3), metadata={"channel": "C9"})
    view["state"] = {"values": {
        "answer": {"value": {"type": "static_select", "selected_option": {"value": "received"}}},
        "received": {"value": {"type": "checkboxes",
                               "selected_options": [{"value": "warrant"}]}},
        "answered_on": {"value": {"type": "datepicker", "selected_date": "2026-11-20"}},
        "reference": {"value": {"type": "plain_text_input", "value": None}},
    }}
    metadata, values = read_view_state(view)
    assert metadata == {"form": "documents_answer", "case_id": "RN-1", "ref": 3,
                        "channel": "C9"}
    assert values == {"answer": "received", "received": ["warrant"],
                      "answered_on": "2026-11-20", "reference": None}


def test_manifest_declares_the_command_endpoint_and_scopes() -> None:
    manifest = yaml.safe_load(Path("slack/manifest.yaml").read_text())
    command = manifest["features"]["slash_commands"][0]
    assert command["command"] == "/notice"
    urls = [command["url"], manifest["settings"]["event_subscriptions"]["request_url"],
            manifest["settings"]["interactivity"]["request_url"]]
    assert all(url.endswith("/slack/events") for url in urls)
    assert {"commands", "chat:write", "im:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
