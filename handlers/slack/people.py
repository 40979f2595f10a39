"""Who a Slack user acts as, and how the people a reply mentions read in Slack.

The core resolves a Slack user to a person inside the interaction's own transaction
(bot/core/identities), and answers with the Slack ids of the people its private messages
mention, so neither needs a database session here."""

from __future__ import annotations

from collections.abc import Callable

from bot.core.identities import PlatformUser
from bot.delivery.people import rendered
from bot.messages import Message, Outcome, mention, render_mentions
from config.platforms import Platform


def acting(slack_id: str) -> PlatformUser:
    """Who a request from this Slack user is made by (Slack ids stay Slack's: replies, views
    and ephemeral messages still go to `slack_id`)."""
    return PlatformUser(Platform.slack, slack_id)


def _slack_ids(outcome: Outcome) -> Callable[[str], str]:
    ids = outcome.mention_ids

    def slack_id(user_id: str) -> str:
        return mention(ids.get(user_id, user_id))

    return slack_id


def slack_mentions(outcome: Outcome) -> list[Message]:
    """The outcome's private messages (shown as ephemeral messages, modals or App Home), with
    each mention naming the person's Slack id, as the delivery loop renders outbox messages."""
    return [rendered(message, _slack_ids(outcome)) for message in outcome.private]


def slack_refusal(outcome: Outcome) -> str:
    """Why the core refused, with the people it names as Slack mentions."""
    return render_mentions(outcome.refusal or "", _slack_ids(outcome))
