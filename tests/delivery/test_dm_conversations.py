"""A person's 1:1 conversation is asked of the platform once, kept in the database for every
loop and later process, and forgotten when the platform refuses it."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from bot.core.service import Core
from bot.delivery.port import Dead, Platform
from bot.messages import DestinationKind, Message
from storage import dm_conversations
from storage.db import transaction
from storage.models import OutboxStatus
from tests.conftest import on_postgres
from tests.delivery.fake_transport import FakeTransport
from tests.delivery.test_delivery import loop, rows, send
from tests.helpers import run_together

OFFICER, FRO = "U0OFF1", "U0SUP1"


def kept(core: Core, identity: str) -> str | None:
    with Session(core.engine) as session:
        return dm_conversations.known(session, Platform.slack, identity)


def test_a_dm_conversation_is_opened_once_for_every_loop_and_process(core: Core) -> None:
    send(core, DestinationKind.dm, FRO, Message(text="one"))
    first = FakeTransport(Platform.slack)
    assert loop(core, first).drain() == 1
    assert first.opened == [FRO] and kept(core, FRO) == f"D-{FRO}"
    # A second process (a restart, another replica) finds the conversation kept.
    send(core, DestinationKind.dm, FRO, Message(text="two"))
    send(core, DestinationKind.dm, OFFICER, Message(text="three"))
    second = FakeTransport(Platform.slack)
    assert loop(core, second).drain() == 2
    assert second.opened == [OFFICER]
    assert [(c.conversation, c.text) for c in second.posted()] == [
        (f"D-{FRO}", "two"), (f"D-{OFFICER}", "three")]


def test_a_kept_dm_conversation_the_platform_refuses_is_forgotten_and_reopened(
    core: Core
) -> None:
    with transaction(core.engine) as session:
        dm_conversations.remember(session, Platform.slack, FRO, "D-stale", at=core.clock.now())
    send(core, DestinationKind.dm, FRO, Message(text="approval request"))
    transport = FakeTransport(Platform.slack)
    transport.fail_next("post", Dead("channel_not_found"))
    assert loop(core, transport).drain() == 1
    # Refused through the kept conversation, then sent through a newly opened one.
    assert transport.opened == [FRO]
    assert [(c.conversation, c.text) for c in transport.posted()] == [
        (f"D-{FRO}", "approval request")]
    assert kept(core, FRO) == f"D-{FRO}"
    assert [r.status for r in rows(core)] == [OutboxStatus.sent]


def test_a_refusal_through_a_newly_opened_conversation_is_final(core: Core) -> None:
    send(core, DestinationKind.dm, FRO, Message(text="approval request"))
    transport = FakeTransport(Platform.slack)
    transport.fail_next("post", Dead("not_allowed"))
    loop(core, transport).drain()  # delivers only the admins' dead-letter alerts
    assert transport.opened.count(FRO) == 1
    assert all(c.conversation != f"D-{FRO}" for c in transport.posted())
    row = rows(core)[0]
    assert row.status == OutboxStatus.dead and row.error == "not_allowed"


def test_remembering_the_same_persons_conversation_twice_keeps_the_newest(core: Core) -> None:
    # Two loops that opened the same person's conversation at once both store it.
    for conversation in ("D-1", "D-2"):
        with transaction(core.engine) as session:
            dm_conversations.remember(session, Platform.slack, FRO, conversation,
                                      at=core.clock.now())
    assert kept(core, FRO) == "D-2"
    # Forgetting a conversation that is no longer the kept one leaves the newer in place.
    with transaction(core.engine) as session:
        dm_conversations.forget(session, Platform.slack, FRO, "D-1")
    assert kept(core, FRO) == "D-2"


@pytest.mark.skipif(not on_postgres(), reason="replicas need PostgreSQL")
def test_loops_running_at_once_open_each_persons_conversation_once(core: Core) -> None:
    people = ["U0OFF1", "U0OFF2", "U0SUP1", "U0SUP2", "U0MGR1"]
    for n in range(6):
        for person in people:
            send(core, DestinationKind.dm, person, Message(text=f"{person} #{n}"))
    transports = [FakeTransport(Platform.slack) for _ in range(3)]
    loops = [loop(core, transport, concurrency=2, linger=0.5) for transport in transports]
    delivered = run_together(*[each.drain for each in loops])
    assert sum(delivered) == 30
    assert sorted(p for t in transports for p in t.opened) == sorted(people)
    assert {r.status for r in rows(core)} == {OutboxStatus.sent}
    for person in people:  # every message went through the one conversation kept for them
        assert {c.conversation for t in transports for c in t.posted()
                if c.text.startswith(person)} == {f"D-{person}"}
