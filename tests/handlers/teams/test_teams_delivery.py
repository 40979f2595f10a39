"""The Teams loop's addresses, and Slack's and Teams' loops in one process (a worker with
NOTICEBOT_PLATFORMS=slack,teams): one pass delivers both platforms' rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from bot.core import outbox
from bot.core.service import Core
from bot.delivery.loop import Delivery
from bot.delivery.together import Together
from bot.messages import DestinationKind, Message
from config.platforms import Platform
from handlers.teams.relay import TeamsRelay
from handlers.teams.transport import TeamsTransport
from storage.db import transaction
from storage.models import OutboxMessage, OutboxStatus
from tests.delivery.fake_transport import FakeTransport
from tests.handlers.teams.conftest import CASES_CHANNEL, OIDS, with_teams_identities
from tests.handlers.teams.fake_teams import APP_ID, TENANT, FakeTeams
from tests.helpers import FRO, OFFICER


@pytest.fixture
def tenant() -> Iterator[FakeTeams]:
    """The tenant's default Bot Connector (DMs); the AOR channel's is `fake` (aor_channel)."""
    server = FakeTeams().start()
    yield server
    server.stop()


def queue(core: Core, kind: DestinationKind, destination: str, text: str) -> None:
    with transaction(core.engine) as session:
        outbox.queue(session, now=core.clock.now(), platforms=[Platform.slack, Platform.teams],
                     kind=kind, destination=destination, message=Message(text=text))


def test_slack_and_teams_loops_deliver_in_one_pass_to_the_right_addresses(
        core: Core, fake: FakeTeams, tenant: FakeTeams) -> None:
    with_teams_identities(core, fake)
    queue(core, DestinationKind.channel, "C0HOUCASES", "to the AOR channel")
    queue(core, DestinationKind.dm, OFFICER, "to the officer")
    queue(core, DestinationKind.dm, OFFICER, "to the officer again")
    queue(core, DestinationKind.dm, FRO, "to the FRO")
    slack = FakeTransport(Platform.slack)
    teams = TeamsTransport(service_url=tenant.url, bot_id=APP_ID, tenant_id=TENANT,
                           token=fake.mint)
    both = Together([
        Delivery(engine=core.engine, transport=slack, clock=core.clock, pace=0.0, linger=0.0),
        TeamsRelay(engine=core.engine, transport=teams, clock=core.clock, pace=0.0, linger=0.0),
    ])
    try:
        assert both.drain() == 8  # 4 rows on each platform
    finally:
        teams.client.close()
    with Session(core.engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
    assert {(r.platform, r.status) for r in rows} == {("slack", OutboxStatus.sent),
                                                      ("teams", OutboxStatus.sent)}
    assert [c.conversation for c in slack.calls if c.conversation.startswith("C")] == \
        ["C0HOUCASES"]
    # The AOR channel through the serviceUrl its aor_channel row gives; DMs through the
    # tenant's, each 1:1 conversation asked for once, for the person's Entra object id.
    assert [c.path for c in fake.calls] == [f"/v3/conversations/{CASES_CHANNEL}/activities"]
    created = [c.body["members"][0]["id"] for c in tenant.calls
               if c.path == "/v3/conversations"]
    assert sorted(created) == sorted([OIDS[OFFICER], OIDS[FRO]])
    assert len([c for c in tenant.calls if c.path.endswith("/activities")]) == 3
