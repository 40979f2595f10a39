"""Buttons (block_actions) and modal submissions (view_submission)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.messages import ActionValue, FormId
from handlers.slack.blocks import ACTION_PREFIX, notice_view, read_view_state
from handlers.slack.render import private, show

if TYPE_CHECKING:
    from handlers.slack.app import SlackDeps

BAD_BUTTON = "That button is not valid any more. Open the case again with `/notice show ID`."


def _channel_of(body: dict[str, Any]) -> str | None:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id")
    return str(channel) if channel else None


def register(app: App, deps: SlackDeps) -> None:
    @app.action(re.compile(rf"^{ACTION_PREFIX}:"))
    def button(ack: Ack, body: dict[str, Any], client: WebClient,
               respond: Respond | None = None) -> None:
        ack()
        user = body["user"]["id"]
        channel = _channel_of(body)
        try:
            value = ActionValue.from_dict(json.loads(body["actions"][0]["value"]))
        except (KeyError, IndexError, TypeError, ValueError):
            private(client, [], BAD_BUTTON, user=user, channel=channel,
                    respond=respond if body.get("response_url") else None)
            return
        outcome = deps.core.click(actor=user, value=value)
        show(outcome, deps, client=client, user=user, channel=channel,
             trigger_id=body.get("trigger_id"),
             respond=respond if body.get("response_url") else None)

    @app.view(f"{ACTION_PREFIX}:form")
    def submit(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        view = body["view"]
        try:
            metadata, values = read_view_state(view)
        except ValueError as error:
            ack(response_action="update", view=notice_view("Not done", str(error)))
            return
        ref = metadata.get("ref")
        outcome = deps.core.submit(
            actor=user, form=FormId(metadata["form"]), values=values,
            case_id=metadata.get("case_id"), ref=int(ref) if ref is not None else None,
            channel=metadata.get("channel") or "",
            submission_key=f"slack-view:{view.get('id')}" if view.get("id") else None,
        )
        if outcome.errors:
            known = {block["block_id"] for block in view.get("blocks", []) if "block_id" in block}
            errors = {k: v for k, v in outcome.errors.items() if k in known}
            if errors:
                ack(response_action="errors", errors=errors)
                return
            text = "; ".join(f"{k}: {v}" for k, v in outcome.errors.items())
            ack(response_action="update", view=notice_view("Not done", text))
            return
        if outcome.refusal:
            ack(response_action="update", view=notice_view("Not done", outcome.refusal))
            return
        ack()
        show(outcome, deps, client=client, user=user, channel=metadata.get("channel"),
             trigger_id=None, respond=None)
