"""Who a Slack user acts as: the person whose Slack identity they are (bot/delivery/identities)."""

from __future__ import annotations

from bot.core.service import Core
from bot.delivery.identities import person_for
from config.platforms import Platform


def acting(core: Core, slack_id: str) -> str:
    """The person id a request from this Slack user acts as (Slack ids stay Slack's: replies,
    views and ephemeral messages still go to `slack_id`)."""
    return person_for(core.engine, Platform.slack, slack_id)
