"""Who a Slack user acts as: the person whose Slack identity they are (bot/core/identities)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core.identities import person_for
from bot.core.service import Core
from bot.delivery.people import recipients, rendered
from bot.delivery.port import Recipient
from bot.messages import Message, mention
from config.platforms import Platform

log = logging.getLogger(__name__)


def acting(core: Core, slack_id: str) -> str:
    """The person id a request from this Slack user acts as (Slack ids stay Slack's: replies,
    views and ephemeral messages still go to `slack_id`)."""
    return person_for(core.engine, Platform.slack, slack_id)


def slack_mentions(core: Core, messages: list[Message]) -> list[Message]:
    """Messages shown straight to a Slack user (ephemeral, modal, App Home), with each mention
    naming the person's Slack id, as the delivery loop renders outbox messages."""
    try:
        return _rendered(core, messages)
    except SQLAlchemyError as error:  # the interaction is done: show it with ids as they are
        log.warning("could not look up the Slack ids of people mentioned: %s", error)
        return messages


def _rendered(core: Core, messages: list[Message]) -> list[Message]:
    shown = []
    with Session(core.engine) as session:
        for message in messages:
            people = recipients(session, Platform.slack, message)
            if not people:
                shown.append(message)
                continue

            def slack_id(user_id: str, people: dict[str, Recipient] = people) -> str:
                return mention(people[user_id].identity if user_id in people else user_id)

            shown.append(rendered(message, slack_id))
    return shown
