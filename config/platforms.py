"""The chat platforms noticebot delivers to. Here, at the bottom of the layers, because the
settings name the platforms a deployment delivers to and the outbox stores them."""

from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    """A surface messages are delivered to. Values are stored in outbox rows."""

    console = "console"
    slack = "slack"
    teams = "teams"
