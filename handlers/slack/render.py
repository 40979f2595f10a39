"""Show a core `Outcome` to the Slack user who caused it. What it queued in the outbox is
delivered by the process's relay thread, woken by the commit (bot.schedule.relay_loop)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.messages import Outcome
from handlers.slack.blocks import fallback_text, form_view, message_blocks

if TYPE_CHECKING:
    from handlers.slack.app import SlackDeps


def show(outcome: Outcome, deps: SlackDeps, *, client: WebClient, user: str,
         channel: str | None, trigger_id: str | None, respond: Respond | None) -> None:
    if outcome.form is not None and trigger_id:
        client.views_open(trigger_id=trigger_id,
                          view=form_view(outcome.form, metadata={"channel": channel}))
    for message in outcome.private:
        private(client, message_blocks(message), fallback_text(message), user=user,
                channel=channel, respond=respond)
    deps.core.deliver_usncb()


def private(client: WebClient, blocks: list[dict[str, Any]], text: str, *, user: str,
            channel: str | None, respond: Respond | None) -> None:
    """Only the user sees it: ephemeral where there is a place for it, else a DM."""
    if respond is not None:
        respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
    elif channel:
        client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)
    else:
        client.chat_postMessage(channel=user, text=text, blocks=blocks)
