"""The outbox gauges are per platform: a Teams queue that stopped moving shows as Teams, and a
healthy Slack queue beside it does not hide it."""

from __future__ import annotations

from datetime import timedelta

from bot.core.service import Core
from bot.messages import DestinationKind
from config.platforms import Platform
from storage.db import transaction
from storage.enums import OutboxStatus
from storage.models import OutboxMessage
from tests.usncb.test_operable_walk import scrape


def _row(core: Core, platform: Platform, *, minutes_old: int,
         status: OutboxStatus = OutboxStatus.pending) -> None:
    with transaction(core.engine) as session:
        session.add(OutboxMessage(
            created_at=core.clock.now() - timedelta(minutes=minutes_old), platform=platform,
            destination_kind=DestinationKind.dm, destination="D1", status=status,
            payload={"title": "t", "text": "x"}))


def test_outbox_gauges_are_labelled_with_each_rows_own_platform(core: Core) -> None:
    _row(core, Platform.slack, minutes_old=1)
    _row(core, Platform.teams, minutes_old=30)
    _row(core, Platform.teams, minutes_old=5)
    _row(core, Platform.teams, minutes_old=60, status=OutboxStatus.dead)

    found = scrape(core)

    assert found['noticebot_outbox_depth{platform="slack"}'] == 1
    assert found['noticebot_outbox_depth{platform="teams"}'] == 2
    assert found['noticebot_outbox_oldest_age_seconds{platform="slack"}'] == 60
    assert found['noticebot_outbox_oldest_age_seconds{platform="teams"}'] == 30 * 60
    assert found['noticebot_outbox_dead{platform="teams"}'] == 1
    assert found['noticebot_outbox_dead{platform="slack"}'] == 0
    # A platform with nothing queued is listed at 0, so an alert rule sees a value.
    assert found['noticebot_outbox_depth{platform="console"}'] == 0
