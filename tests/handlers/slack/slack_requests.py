"""Request bodies the way Slack sends them (slash commands, button clicks, modal submissions)
and the signature headers over them. Shared by the Slack tests and the latency benchmark."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

FORM = "application/x-www-form-urlencoded"


def signed_headers(secret: str, body: str, *, timestamp: int | None = None,
                   signature: str | None = None, content_type: str = FORM) -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    if signature is None:
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature}


def command_body(user: str, text: str, *, channel: str, trigger_id: str,
                 response_url: str) -> str:
    return urlencode({
        "command": "/notice", "text": text, "user_id": user, "channel_id": channel,
        "team_id": "T1", "trigger_id": trigger_id, "response_url": response_url,
    })


def interaction_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def click_body(user: str, value: dict[str, Any], *, channel: str, trigger_id: str,
               response_url: str) -> str:
    return interaction_body({
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": user},
        "trigger_id": trigger_id, "response_url": response_url,
        "channel": {"id": channel}, "container": {"type": "message", "channel_id": channel},
        "actions": [{"type": "button", "action_id": f"nb:{value['action']}:0",
                     "block_id": "b", "value": json.dumps(value),
                     "action_ts": str(time.time())}],
    })


def submit_body(user: str, view: dict[str, Any], values: dict[str, Any], *,
                view_id: str) -> str:
    """A view_submission of `view` (as the bot opened it) filled with `values` by block id."""
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        name, kind = block["block_id"], block["element"]["type"]
        value = values.get(name)
        if kind == "datepicker":
            element = {"type": kind, "selected_date": value}
        elif kind in ("static_select", "radio_buttons"):
            element = {"type": kind,
                       "selected_option": {"value": value} if value else None}
        elif kind == "checkboxes":
            element = {"type": kind, "selected_options": [{"value": v} for v in value or []]}
        else:
            element = {"type": kind, "value": value}
        state[name] = {"value": element}
    return interaction_body({
        "type": "view_submission", "team": {"id": "T1"}, "user": {"id": user},
        "view": {**view, "id": view_id, "state": {"values": state}},
    })
