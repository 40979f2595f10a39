"""The Teams relay killed between send and store, then restarted: nothing is lost, and the
duplicates it produces are counted (Teams cannot look a sent message up, so a new post the
platform stored before the relay died is posted again by the relay that takes the claim over;
an update is idempotent and produces none). The README's Teams section quotes the count."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta

from sqlmodel import Session, select

from bot.clock import ManualClock
from bot.core.service import Core
from bot.delivery.loop import LEASE
from bot.delivery.port import Address, Posted, Recipient
from bot.messages import DestinationKind, Message
from config.platforms import Platform
from handlers.teams.relay import TeamsRelay
from handlers.teams.transport import TeamsTransport
from storage.db import transaction
from storage.models import OutboxMessage, OutboxStatus
from tests.handlers.teams.conftest import CASES_CHANNEL, with_teams_identities
from tests.handlers.teams.fake_teams import APP_ID, TENANT, FakeTeams
from tests.helpers import FRO, OFFICER

MARK = re.compile(r"\[m(\d{3})\]")


class Killed(BaseException):
    """The process dies: nothing after the platform's answer runs (not even `except
    Exception`), so the row stays 'sending' with its claim, as after a SIGKILL."""


class Doomed(TeamsTransport):
    """The Teams transport of a relay that dies right after Teams stored a call of the kind
    `kill` names, from the call numbered `kill[1]` on (counted across relays)."""

    def __init__(self, fake: FakeTeams, kill: tuple[str, int] | None, counts: Counter[str],
                 killed_on: list[str]) -> None:
        super().__init__(service_url=fake.url, bot_id=APP_ID, tenant_id=TENANT,
                         token=fake.mint)
        self.kill, self.counts, self.killed_on = kill, counts, killed_on

    def _die_after(self, kind: str) -> None:
        self.counts["calls"] += 1
        if self.kill is not None and self.kill[0] == kind and self.counts["calls"] >= self.kill[1]:
            self.killed_on.append(kind)
            raise Killed()

    def post(self, *, to: Address, message: Message, outbox_id: int,
             people: Mapping[str, Recipient]) -> Posted:
        posted = super().post(to=to, message=message, outbox_id=outbox_id, people=people)
        self._die_after("post")
        return posted

    def update(self, *, posted: Posted, message: Message,
               people: Mapping[str, Recipient]) -> None:
        super().update(posted=posted, message=message, people=people)
        self._die_after("update")


def add(core: Core, kind: str, destination: str, number: int, *,
        key: str | None = None) -> None:
    with transaction(core.engine) as session:
        session.add(OutboxMessage(
            created_at=core.clock.now(), destination_kind=DestinationKind(kind),
            destination=destination,
            message_key=key, platform=Platform.teams,
            payload=Message(title="Notice", text=f"step [m{number:03d}]", key=key).to_dict()))


def seed(core: Core) -> tuple[int, int]:
    """Posts and updates: channel cards (some keyed, updated later), a case's root with thread
    replies, and 1:1 cards; returns (new posts, updates)."""
    number = 0
    for index in range(12):
        add(core, "channel", CASES_CHANNEL, number, key=f"card-{index}" if index < 6 else None)
        number += 1
    add(core, "channel", CASES_CHANNEL, number, key="CASE-1:root")
    number += 1
    for _ in range(10):
        add(core, "thread", "CASE-1", number)
        number += 1
    for index in range(8):
        add(core, "dm", (OFFICER, FRO)[index % 2], number)
        number += 1
    for index in range(6):  # later versions of the keyed channel cards: updates in place
        add(core, "channel", CASES_CHANNEL, number, key=f"card-{index}")
        number += 1
    return number - 6, 6


def test_teams_relay_killed_between_send_and_store_loses_nothing(
        core: Core, fake: FakeTeams) -> None:
    with_teams_identities(core, fake)
    posts, updates = seed(core)
    assert isinstance(core.clock, ManualClock)
    # Killed right after Teams stored the first new post from the 5th, 14th and 22nd call on,
    # and after the first update Teams applied from the 25th call on.
    kills = (("post", 5), ("post", 14), ("post", 22), ("update", 25))
    counts, killed_on = Counter[str](), list[str]()
    for kill in (*kills, None):
        relay = TeamsRelay(engine=core.engine, clock=core.clock, pace=0.0, linger=0.0,
                           concurrency=1, transport=Doomed(fake, kill, counts, killed_on))
        teams = relay.teams
        try:
            while relay.drain(limit=500) > 0:
                pass
        except Killed:
            pass
        else:
            assert kill is None, "the relay ran out of work before it was killed"
        teams.client.close()
        core.clock.advance(LEASE + timedelta(seconds=1))  # the dead relay's lease runs out

    with Session(core.engine) as session:
        left = session.exec(select(OutboxMessage).where(
            OutboxMessage.status != OutboxStatus.sent)).all()
    assert left == []  # nothing lost: every row sent
    posted = Counter(int(m) for call in fake.posts() if call.method == "POST"
                     for m in MARK.findall(json.dumps(call.body)))
    updated = Counter(int(m) for call in fake.calls if call.method == "PUT"
                      for m in MARK.findall(json.dumps(call.body)))
    assert set(posted) == set(range(posts))  # every new post reached Teams
    assert len(updated) == updates
    assert killed_on == ["post", "post", "post", "update"]
    # Measured: one duplicate card per kill between a new post and its store (3 here); a kill
    # after an update sends the update again, in place: no duplicate anyone sees.
    assert sum(n - 1 for n in posted.values()) == 3, posted
    assert sum(n - 1 for n in updated.values()) == 1, updated
