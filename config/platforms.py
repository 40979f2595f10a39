"""The chat platforms noticebot delivers to. Here, at the bottom of the layers, because the
settings name the platforms a deployment delivers to and the outbox stores them."""

from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    """A surface messages are delivered to. Values are stored in outbox rows."""

    console = "console"
    slack = "slack"
    teams = "teams"


# What each platform's ids look like, for checking a roster before anything is imported.
# Slack: user ids U…/W…, channel ids C…/G…/D…; Teams: Entra object ids (GUIDs).
PERSON_ID_SHAPES: dict[Platform, str] = {
    Platform.slack: r"^[UW][A-Z0-9]{2,31}$",
    Platform.teams: r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$",
}
# Where an answer names people in words (a Teams invoke is answered with plain text and
# cards): the core reads their names with the answer. Slack renders a mention's id itself.
NAMES_PEOPLE = frozenset({Platform.teams})

CHANNEL_ID_SHAPES: dict[Platform, str] = {
    Platform.slack: r"^[CGD][A-Z0-9]{2,31}$",
    # A Teams channel's conversation id, e.g. 19:abc…@thread.tacv2 (or @thread.skype).
    Platform.teams: r"^19:[A-Za-z0-9_.=-]+@thread\.[a-z0-9]+$",
}
