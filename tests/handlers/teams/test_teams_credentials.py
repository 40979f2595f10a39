"""Teams refusing the bot's own credentials (401, or no token to be had) is nobody's message's
fault: the messages wait, none is dead-lettered, and once the refusals have lasted past the
grace the admins hear of it on the deployment's other platform, once; when a message gets
through again they hear that too. Each step is on the record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from bot.clock import ManualClock
from bot.core import outbox
from bot.core.service import Core
from bot.delivery.credentials import CREDENTIALS_GRACE
from bot.delivery.port import Address, Retry
from bot.messages import DestinationKind, Message
from config.platforms import Platform
from handlers.teams.transport import TeamsTransport
from storage import record
from storage.db import transaction
from storage.models import OutboxMessage, OutboxStatus, PersonRole, RecordEntry, Role
from tests.handlers.teams.conftest import teams_relay_for, with_teams_identities
from tests.handlers.teams.fake_teams import APP_ID, TENANT, FakeTeams

BOTH = (Platform.slack, Platform.teams)


def _queue_root(core: Core) -> None:
    with transaction(core.engine) as session:
        outbox.queue(session, now=core.clock.now(), platforms=[Platform.teams],
                     kind=DestinationKind.channel, destination="HOU",
                     message=Message(text="a root card"), case_id=None)


def _entries(core: Core, action: str) -> list[dict[str, Any]]:
    with Session(core.engine) as session:
        found = []
        for seq in session.exec(select(RecordEntry.seq).where(RecordEntry.action == action)):
            body = record.payload_of(session, seq)
            assert body is not None
            found.append(body)
        return found


def _alerts(core: Core) -> list[tuple[str, str, str]]:
    with Session(core.engine) as session:
        return [(row.platform.value, row.destination_kind.value, row.payload["title"])
                for row in session.exec(select(OutboxMessage).where(
                    col(OutboxMessage.alert).is_(True)).order_by(col(OutboxMessage.id)))]


def _admins(core: Core) -> list[str]:
    with Session(core.engine) as session:
        return list(session.exec(select(PersonRole.user_id)
                                 .where(PersonRole.role == Role.admin.value)
                                 .order_by(col(PersonRole.user_id))))


def _root(core: Core) -> OutboxMessage:
    with Session(core.engine) as session:
        return session.exec(select(OutboxMessage).where(
            col(OutboxMessage.alert).is_(False))).one()


def test_refused_credentials_keep_messages_and_tell_admins_elsewhere_once(
        core: Core, clock: ManualClock, fake: FakeTeams) -> None:
    with_teams_identities(core, fake)
    admins = _admins(core)
    assert admins
    _queue_root(core)
    relay = teams_relay_for(core, fake, alert_on=BOTH)
    fake.failures.extend([(401, {})] * 3)

    relay.drain()  # the first refusal: within the grace, nobody is bothered yet
    assert _root(core).status is OutboxStatus.pending
    assert _alerts(core) == [] and _entries(core, "delivery.credentials_refused") == []

    clock.advance(CREDENTIALS_GRACE + timedelta(seconds=1))
    relay.drain()  # still refused past the grace: the admins are told, on Slack
    refused = _entries(core, "delivery.credentials_refused")
    assert len(refused) == 1
    assert refused[0]["platform"] == "teams" and refused[0]["error"].startswith("401")
    assert refused[0]["alerted"] == admins and "not_reachable" not in refused[0]
    told = [("slack", "dm", "Teams refuses noticebot's credentials")] * len(admins)
    assert _alerts(core) == told

    clock.advance(timedelta(minutes=10))
    relay.drain()  # refused again: not told again
    assert len(_entries(core, "delivery.credentials_refused")) == 1 and _alerts(core) == told
    assert _root(core).status is OutboxStatus.pending  # kept, never dead-lettered

    clock.advance(timedelta(minutes=10))
    relay.drain()  # mended: the message goes out, and the admins hear it is over
    assert _root(core).status is OutboxStatus.sent
    # Three refused attempts and the one that landed: not posted again after it.
    assert len([post for post in fake.posts() if "a root card" in str(post.body)]) == 4
    relay.drain()
    assert len([post for post in fake.posts() if "a root card" in str(post.body)]) == 4
    accepted = _entries(core, "delivery.credentials_accepted")
    assert len(accepted) == 1 and accepted[0]["alerted"] == admins
    assert _alerts(core)[len(told):] == [
        ("slack", "dm", "Teams accepts noticebot's credentials again")] * len(admins)


def test_a_refusal_shorter_than_the_grace_tells_no_one(
        core: Core, clock: ManualClock, fake: FakeTeams) -> None:
    with_teams_identities(core, fake)
    _queue_root(core)
    relay = teams_relay_for(core, fake, alert_on=BOTH)
    fake.failures.append((401, {}))
    relay.drain()
    clock.advance(timedelta(seconds=5))
    relay.drain()
    assert _root(core).status is OutboxStatus.sent
    assert _alerts(core) == []
    assert _entries(core, "delivery.credentials_refused") == []
    assert _entries(core, "delivery.credentials_accepted") == []


def test_with_teams_alone_no_admin_can_be_told_and_the_record_says_so(
        core: Core, clock: ManualClock, fake: FakeTeams,
        caplog: pytest.LogCaptureFixture) -> None:
    with_teams_identities(core, fake)
    _queue_root(core)
    relay = teams_relay_for(core, fake)  # the deployment delivers to Teams only
    fake.failures.extend([(401, {})] * 2)
    relay.drain()
    clock.advance(CREDENTIALS_GRACE + timedelta(seconds=1))
    relay.drain()
    refused = _entries(core, "delivery.credentials_refused")
    assert len(refused) == 1
    assert refused[0]["alerted"] == [] and refused[0]["not_reachable"] == _admins(core)
    assert _alerts(core) == []  # an alert through Teams would arrive only once mended
    assert "refuses noticebot's credentials" in caplog.text


def _transport(fake: FakeTeams, token: Any) -> TeamsTransport:
    return TeamsTransport(service_url=fake.url, bot_id=APP_ID, tenant_id=TENANT, token=token,
                          client=httpx.Client(timeout=5))


def test_a_token_that_cannot_be_had_and_a_401_are_credentials_a_500_is_not(
        fake: FakeTeams) -> None:
    def no_token() -> str:
        raise RuntimeError("AADSTS7000215: Invalid client secret provided.")

    to = Address(conversation="19:c@thread.tacv2")
    with pytest.raises(Retry) as raised:
        _transport(fake, no_token).post(to=to, message=Message(text="x"), outbox_id=1,
                                        people={})
    assert raised.value.credentials and not raised.value.uncertain
    for status, credentials in ((401, True), (500, False), (429, False)):
        fake.failures.append((status, {}))
        with pytest.raises(Retry) as raised:
            _transport(fake, fake.mint).post(to=to, message=Message(text="x"), outbox_id=1,
                                             people={})
        assert raised.value.credentials is credentials, status


def test_while_refused_the_other_messages_wait_without_asking_teams(
        core: Core, clock: ManualClock, fake: FakeTeams) -> None:
    with_teams_identities(core, fake)
    with transaction(core.engine) as session:
        for n in range(5):
            outbox.queue(session, now=core.clock.now(), platforms=[Platform.teams],
                         kind=DestinationKind.channel, destination="HOU",
                         message=Message(text=f"root {n}", key=f"CASE{n}:root"), case_id=None)
    relay = teams_relay_for(core, fake, alert_on=BOTH)
    fake.failures.extend([(401, {})] * 20)
    relay.drain()
    assert len(fake.posts()) == 1  # one call found the credentials refused; none other asked
    fake.failures.clear()
    for _ in range(3):
        clock.advance(timedelta(minutes=1))
        relay.drain()
    with Session(core.engine) as session:
        statuses = {row.status for row in session.exec(select(OutboxMessage))}
    assert statuses == {OutboxStatus.sent}
    assert len(fake.posts()) == 1 + 5  # each message once, once mended
