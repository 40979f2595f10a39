"""A Teams message that cannot be delivered (403: the app is not in the conversation) is
dead-lettered, recorded, and the admins are told on every platform the deployment delivers
to: an admin who is on Slack only hears of it there. The record names only those told."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot.core import outbox
from bot.core.service import Core
from bot.messages import DestinationKind, Message
from config.platforms import Platform
from storage import record
from storage.db import transaction
from storage.models import OutboxMessage, OutboxStatus, PersonRole, RecordEntry, Role
from tests.handlers.teams.conftest import teams_relay_for, with_teams_identities
from tests.handlers.teams.fake_teams import FakeTeams


def _dead_letter(core: Core, fake: FakeTeams, **relay: Any) -> tuple[list[OutboxMessage],
                                                                       dict[str, Any]]:
    with_teams_identities(core, fake)  # the admin has no Teams identity in the sample roster
    with transaction(core.engine) as session:
        outbox.queue(session, now=core.clock.now(), platforms=[Platform.teams],
                     kind=DestinationKind.channel, destination="HOU",
                     message=Message(text="a root card"), case_id=None)
    fake.failures.append((403, {}))
    teams_relay_for(core, fake, **relay).drain()
    with Session(core.engine) as session:
        rows = list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))
        letter = session.exec(select(RecordEntry.seq).where(
            RecordEntry.action == "outbox.dead_letter")).one()
        body = record.payload_of(session, letter)
    assert body is not None
    assert (rows[0].status, rows[0].error) == (OutboxStatus.dead, body["error"])
    return rows, body


def _admins(core: Core) -> list[str]:
    with Session(core.engine) as session:
        return list(session.exec(select(PersonRole.user_id)
                                 .where(PersonRole.role == Role.admin.value)))


def test_admins_on_slack_only_hear_of_a_teams_dead_letter_on_slack(core: Core,
                                                                  fake: FakeTeams) -> None:
    admins = _admins(core)
    assert admins
    rows, body = _dead_letter(core, fake, alert_on=(Platform.slack, Platform.teams))
    alerts = [(r.platform, r.destination_kind, r.destination) for r in rows if r.alert]
    assert alerts == [(Platform.slack.value, DestinationKind.dm.value, a) for a in admins]
    assert body["alerted"] == admins and "not_reachable" not in body


def test_the_record_never_says_an_admin_was_told_when_none_could_be(
        core: Core, fake: FakeTeams, caplog: pytest.LogCaptureFixture) -> None:
    admins = _admins(core)
    rows, body = _dead_letter(core, fake)  # Teams only, where no admin is
    assert [r for r in rows if r.alert] == []
    assert body["alerted"] == [] and body["not_reachable"] == admins
    assert "no admin can be told" in caplog.text
