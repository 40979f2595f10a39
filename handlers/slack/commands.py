"""`/notice` slash command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers.slack.render import show

if TYPE_CHECKING:
    from handlers.slack.app import SlackDeps


def register(app: App, deps: SlackDeps) -> None:
    @app.command("/notice")
    def notice(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        outcome = deps.core.command(actor=command["user_id"], text=command.get("text") or "",
                                    channel=command.get("channel_id") or "")
        show(outcome, deps, client=client, user=command["user_id"],
             channel=command.get("channel_id"), trigger_id=command.get("trigger_id"),
             respond=respond)
