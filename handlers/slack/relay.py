"""The Slack relay: the platform-neutral delivery loop (bot/delivery/loop.py) over the Slack
transport (handlers/slack/transport.py). How delivery works is in docs/delivery.md.
"""

from __future__ import annotations

from datetime import timedelta

from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.clock import Clock
from bot.delivery.loop import CONCURRENCY, LEASE, LINGER, MAX_BACKOFF, Delivery, backoff
from config.platforms import Platform
from handlers.slack.transport import EVENT_TYPE, PACE, SlackTransport, relay_client

__all__ = ["EVENT_TYPE", "SlackRelay", "backoff", "relay_client"]


class SlackRelay(Delivery):
    """Delivers the outbox's Slack rows to Slack."""

    def __init__(self, *, engine: Engine, client: WebClient, clock: Clock,
                 lease: timedelta = LEASE, max_backoff: timedelta = MAX_BACKOFF,
                 pace: float = PACE, concurrency: int = CONCURRENCY,
                 linger: float = LINGER, alert_on: tuple[Platform, ...] = ()) -> None:
        self.slack = SlackTransport(client, pace=pace)
        super().__init__(engine=engine, transport=self.slack, clock=clock, lease=lease,
                         max_backoff=max_backoff, concurrency=concurrency, linger=linger,
                         alert_on=alert_on)

    @property
    def api(self) -> WebClient:
        """The client the relay calls Slack with (without the SDK's retry handlers)."""
        return self.slack.api
