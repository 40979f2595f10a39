"""The port between the outbox and a chat platform.

The delivery loop owns everything that does not depend on the platform: claiming rows, leases,
per-conversation lanes, pacing, back-off and dead letters. A transport only turns one call into
one platform request and reports how it went: the value it returns, or `Retry` / `Dead`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.messages import Message

# Settings and outbox rows name platforms too, so the enum lives in config; the port names it.
from config.platforms import Platform as Platform


@dataclass(frozen=True)
class Address:
    """Where a new post goes, in the platform's own terms."""

    conversation: str  # Slack channel id, Teams conversation id, a DM conversation
    thread: str | None = None  # the root message's ref, for a reply in its thread


@dataclass(frozen=True)
class Posted:
    """A message the platform accepted: enough to update it in place later."""

    conversation: str
    ref: str  # Slack ts, Teams activity id


@dataclass(frozen=True)
class Recipient:
    """A person as one platform knows them (for rendering mentions and opening DMs)."""

    user_id: str  # noticebot's person id, as mentions in core text carry it
    identity: str  # the platform's id for the person (Slack user id, Entra object id)
    name: str


@dataclass(frozen=True)
class Pacing:
    """How fast a transport may send, so the loop paces itself instead of learning from 429s."""

    per_conversation: float  # seconds between two posts into one conversation
    per_second: float | None = None  # requests per second across the whole platform tenant


class Retry(Exception):
    """A transient failure: the row goes back to pending until `delay` (default: back-off).
    `uncertain`: the failed call may have taken effect on the platform. `credentials`: the
    platform refused the bot's own credentials (or none could be had), so every message waits
    until an admin mends them: the loop tells admins if it lasts (`CREDENTIALS_GRACE`)."""

    def __init__(self, code: str, *, uncertain: bool, delay: timedelta | None = None,
                 credentials: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.uncertain = uncertain
        self.delay = delay
        self.credentials = credentials


class Dead(Exception):
    """A permanent failure: waiting will not cure it; the row is dead-lettered."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Transport(Protocol):
    """One chat platform, as the delivery loop sees it. Methods raise `Retry` or `Dead`."""

    platform: Platform
    pacing: Pacing
    can_find: bool  # whether `find` can look for an earlier post (Slack yes, Teams no)

    def post(self, *, to: Address, message: Message, outbox_id: int,
             people: Mapping[str, Recipient]) -> Posted:
        """Post a new message; `people` resolves the mentions in its text."""
        ...

    def update(self, *, posted: Posted, message: Message,
               people: Mapping[str, Recipient]) -> None:
        """Replace an earlier post in place (idempotent)."""
        ...

    def open_dm(self, *, recipient: Recipient) -> str:
        """The conversation id of a direct-message conversation with the person."""
        ...

    def find(self, *, to: Address, outbox_id: int) -> str | None:
        """The ref of an earlier post of this outbox row, or None if there is none (or the
        platform cannot look: `can_find` is False)."""
        ...
