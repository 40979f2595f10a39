"""Show a core `Outcome` to the Slack user who caused it. What it queued in the outbox is
delivered by the process's relay thread, woken by the commit (bot.schedule.relay_loop).

After a listener has acknowledged Slack's request, nothing it raises may reach Bolt: Bolt
would drop the ack and Slack would show the user a 404 (R9). A failure of the core is told
to the user (its transaction rolled back, so nothing was changed) and logged; a failure to
show an outcome the core committed is logged (the outbox delivers what it queued)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.messages import Message, Outcome
from handlers.slack.blocks import (
    MAX_VIEW_BLOCKS,
    VIEW_TITLE,
    clip,
    fallback_text,
    form_view,
    message_blocks,
)
from handlers.slack.people import slack_mentions

if TYPE_CHECKING:
    from handlers.slack.deps import SlackDeps

log = logging.getLogger(__name__)
FAILED = "That could not be done, and nothing was changed. Please try again."


def attempt(run: Callable[[], Outcome], *, what: str,
            tell: Callable[[str], None]) -> Outcome | None:
    """The core's answer, or None when it failed (then the user has been told, and it is
    logged). The core runs in one transaction, so a failure changed nothing."""
    try:
        return run()
    except Exception:
        log.exception("%s failed after Slack's request was acknowledged", what)
        say(tell, FAILED)
        return None


def say(tell: Callable[[str], None], text: str) -> None:
    """Tell the user something privately; if Slack does not take it, log it and go on."""
    try:
        tell(text)
    except Exception as error:
        log.warning("could not tell the user %r: %s", text[:60], error)


def show(outcome: Outcome, deps: SlackDeps, *, client: WebClient, user: str,
         channel: str | None, trigger_id: str | None, respond: Respond | None) -> None:
    """Never raises: the outcome is committed whether or not Slack takes what is shown."""
    try:
        modal_used = False
        if outcome.form is not None and trigger_id:
            client.views_open(trigger_id=trigger_id,
                              view=form_view(outcome.form, metadata={"channel": channel}))
            modal_used = True
        if outcome.private:
            show_private(client, slack_mentions(outcome), user=user,
                         channel=channel,
                         respond=respond, trigger_id=None if modal_used else trigger_id)
    except Exception as error:
        log.warning("could not show an outcome to %s: %s", user, error)
    try:
        deps.core.deliver_usncb()
    except Exception as error:
        log.warning("USNCB delivery after an interaction failed (the sweep retries): %s", error)


def show_private(client: WebClient, messages: list[Message], *, user: str,
                 channel: str | None, respond: Respond | None,
                 trigger_id: str | None) -> None:
    """Only the user sees them: ephemeral where there is a place for it. Without one (App
    Home has no channel and no response_url) a modal is opened, never a DM: a DM would keep
    subject details in Slack's history (O18)."""
    if respond is None and not channel and trigger_id:
        blocks: list[dict[str, Any]] = []
        for message in messages:
            blocks += message_blocks(message)
        title = messages[0].title or "noticebot"
        client.views_open(trigger_id=trigger_id, view=modal(title, blocks))
        return
    for message in messages:
        private(client, message_blocks(message), fallback_text(message), user=user,
                channel=channel, respond=respond)


def modal(title: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": clip(title, VIEW_TITLE)},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": blocks[:MAX_VIEW_BLOCKS]}


def private(client: WebClient, blocks: list[dict[str, Any]], text: str, *, user: str,
            channel: str | None, respond: Respond | None) -> None:
    """Only the user sees it: ephemeral where there is a place for it, else a DM (only for
    messages without subject details: details from App Home go to a modal, above)."""
    if respond is not None:
        respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
    elif channel:
        client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)
    else:
        client.chat_postMessage(channel=user, text=text, blocks=blocks)
