"""The Teams relay: the platform-neutral delivery loop (bot/delivery/loop.py) over the Teams
transport (handlers/teams/transport.py), with the addresses Teams needs: an AOR channel's
conversation and its `serviceUrl` from `aor_channel`, a person's Entra object id from
`person_identity` (the loop's `recipient`), and each 1:1 conversation asked for once per person
(the loop keeps it in `dm_conversation`; Teams answers the same conversation if asked again)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import Clock
from bot.delivery.loop import LEASE, LINGER, MAX_BACKOFF, Delivery
from bot.delivery.people import channel_service_url
from config.platforms import Platform
from config.teams import TeamsSettings
from handlers.teams.transport import TeamsTransport, TokenSource, transport_from

# Rows in flight (never two in one conversation). The tenant's 50 requests a second, not a
# thread's, bind a fan-out: 8 keep the loop at its 45/s pace on a loaded host where 4 did not
# (bench TP2: 1.22× the minimum with 4, 1.14× with 8).
CONCURRENCY = 8


class TeamsRelay(Delivery):
    """Delivers the outbox's Teams rows to Teams."""

    def __init__(self, *, engine: Engine, transport: TeamsTransport, clock: Clock,
                 lease: timedelta = LEASE, max_backoff: timedelta = MAX_BACKOFF,
                 pace: float | None = None, concurrency: int = CONCURRENCY,
                 linger: float = LINGER, alert_on: tuple[Platform, ...] = ()) -> None:
        if transport.service_url_for is None:
            transport.service_url_for = lambda conversation: _service_url(engine, conversation)
        self.teams = transport
        super().__init__(engine=engine, transport=transport, clock=clock, lease=lease,
                         max_backoff=max_backoff, pace=pace, concurrency=concurrency,
                         linger=linger, alert_on=alert_on)


def _service_url(engine: Engine, conversation: str) -> str | None:
    with Session(engine) as session:
        return channel_service_url(session, Platform.teams, conversation)


def teams_relay(*, engine: Engine, settings: TeamsSettings, clock: Clock,
                alert_on: tuple[Platform, ...] = (), token: TokenSource | None = None,
                client: httpx.Client | None = None) -> TeamsRelay:
    """The relay a `noticebot teams` or `noticebot worker` process runs; `alert_on`: the
    deployment's platforms (`Settings.platforms`), where admins hear of dead letters."""
    return TeamsRelay(engine=engine, clock=clock, alert_on=alert_on,
                      transport=transport_from(settings, token=token, client=client))
