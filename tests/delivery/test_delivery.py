"""The platform-neutral delivery loop (bot/delivery) over a fake transport, and which platform's
loop a row belongs to."""

from __future__ import annotations

import io
import itertools
import time
from datetime import timedelta

from sqlmodel import Session, col, select

from bot.clock import ManualClock
from bot.core.context import unit_of_work
from bot.core.service import Core
from bot.delivery.loop import Delivery
from bot.delivery.port import Dead, Pacing, Platform, Retry
from bot.messages import DestinationKind, Message, mention
from handlers.console_script import ScriptedConsole
from storage.models import OutboxMessage, OutboxStatus, PlatformMessage
from tests.delivery.fake_transport import FakeTransport
from tests.helpers import entries

ADMIN = "U0REC1"


def send(core: Core, kind: DestinationKind, destination: str, message: Message,
         case_id: str | None = None) -> None:
    with unit_of_work(core.engine, clock=core.clock, settings=core.settings,
                      actor="test") as ctx:
        ctx.send(kind, destination, message, case_id=case_id)


def rows(core: Core) -> list[OutboxMessage]:
    with Session(core.engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def loop(core: Core, transport: FakeTransport, **kwargs: object) -> Delivery:
    return Delivery(engine=core.engine, transport=transport, clock=core.clock,
                    **{"linger": 0.0, "concurrency": 1, **kwargs})  # type: ignore[arg-type]


def test_a_console_on_a_shared_database_leaves_slack_rows_to_slack(core: Core) -> None:
    # The deployment delivers to Slack; a console started against the same database.
    send(core, DestinationKind.channel, "C0HOUCASES", Message(text="for Slack"))
    out = io.StringIO()
    ScriptedConsole(core, ["whoami"], stdout=out, user="U0OFF1").run()
    assert "for Slack" not in out.getvalue()
    assert [(r.platform, r.status) for r in rows(core)
            if r.platform == "slack"] == [("slack", OutboxStatus.pending)]
    # What the console itself queues is the console's, and Slack's loop never takes it.
    send(core, DestinationKind.channel, "C0HOUCASES", Message(text="for the console"))
    slack = FakeTransport(Platform.slack)
    assert loop(core, slack).drain() == 1
    assert [c.text for c in slack.posted()] == ["for Slack"]
    assert rows(core)[0].status == OutboxStatus.sent
    assert [(r.platform, r.status) for r in rows(core)][-1] == ("console", OutboxStatus.pending)


def test_r6_keyed_messages_are_posted_once_then_updated_in_place(core: Core) -> None:
    transport = FakeTransport()
    send(core, DestinationKind.channel, "C0HOUCASES", Message(text="v1", key="K1"))
    send(core, DestinationKind.channel, "C0HOUCASES", Message(text="v2", key="K1"))
    assert loop(core, transport).drain() == 2
    assert [(c.method, c.text) for c in transport.calls] == [("post", "v1"), ("update", "v2")]
    with Session(core.engine) as session:
        known = session.get(PlatformMessage, ("K1", "slack"))
    assert known is not None and known.ts == transport.calls[0].ref


def test_r6_retry_waits_for_its_delay_and_an_uncertain_post_is_looked_for(
        core: Core, clock: ManualClock) -> None:
    transport = FakeTransport()
    send(core, DestinationKind.channel, "C0HOUCASES", Message(text="hello"))
    transport.fail_next("post", Retry("timeout", uncertain=True), landed=True)
    delivery = loop(core, transport)
    assert delivery.drain() == 0
    [row] = rows(core)
    assert row.error == "uncertain: timeout" and row.next_attempt_at is not None
    assert delivery.drain() == 0  # not due yet
    clock.advance(timedelta(seconds=2))
    assert delivery.drain() == 1
    # The first attempt had landed: found by its outbox id, not posted twice.
    assert [c.method for c in transport.calls] == ["post", "find"]
    assert rows(core)[0].platform_ref == transport.calls[0].ref


def test_r6_without_find_an_uncertain_post_is_sent_again(core: Core,
                                                         clock: ManualClock) -> None:
    # A platform that cannot look for an earlier post (Teams): the loop does not ask it.
    transport = FakeTransport(Platform.slack, can_find=False)
    send(core, DestinationKind.channel, "C0HOUCASES", Message(text="hello"))
    transport.fail_next("post", Retry("http_502", uncertain=True), landed=True)
    delivery = loop(core, transport)
    delivery.drain()
    clock.advance(timedelta(seconds=2))
    assert delivery.drain() == 1
    assert [c.method for c in transport.calls] == ["post", "post"]


def test_retry_after_is_honoured(core: Core, clock: ManualClock) -> None:
    transport = FakeTransport()
    send(core, DestinationKind.channel, "C0HOUCASES", Message(text="hello"))
    transport.fail_next("post", Retry("ratelimited", uncertain=False,
                                      delay=timedelta(seconds=30)))
    delivery = loop(core, transport)
    delivery.drain()
    assert rows(core)[0].error == "ratelimited"
    clock.advance(timedelta(seconds=29))
    assert delivery.drain() == 0
    clock.advance(timedelta(seconds=1))
    assert delivery.drain() == 1


def test_r6_dead_letter_is_recorded_and_alerts_admins_on_the_same_platform(
        core: Core) -> None:
    transport = FakeTransport()
    send(core, DestinationKind.dm, "U0OFF1", Message(text="secret-free"), case_id="CASE1")
    transport.fail_next("post", Dead("user_not_found"))
    delivery = loop(core, transport)
    assert delivery.drain() == 1  # the dead letter, then the alert to the admin
    dead, alert = rows(core)
    assert dead.status == OutboxStatus.dead and dead.error == "user_not_found"
    assert alert.platform == "slack" and alert.alert and alert.destination == ADMIN
    assert transport.posted()[0].conversation == f"D-{ADMIN}"
    [entry] = entries(core, action="outbox.dead_letter")
    assert entry.case_id == "CASE1"


def test_thread_replies_wait_for_their_root_on_their_platform(core: Core) -> None:
    transport = FakeTransport()
    send(core, DestinationKind.thread, "CASE9", Message(text="reply"), case_id="CASE9")
    send(core, DestinationKind.channel, "C0HOUCASES",
         Message(text="root", key="CASE9:root"), case_id="CASE9")
    assert loop(core, transport).drain() == 2
    root, reply = transport.posted()
    assert (root.text, reply.text) == ("root", "reply")
    assert (reply.conversation, reply.thread) == ("C0HOUCASES", root.ref)


def test_tenant_pacing_spaces_requests_across_conversations(core: Core) -> None:
    transport = FakeTransport(pacing=Pacing(per_conversation=0.0, per_second=10.0))
    for n in range(5):
        send(core, DestinationKind.channel, f"C{n}", Message(text=str(n)))
    started = time.monotonic()
    assert loop(core, transport, concurrency=3).drain() == 5
    assert time.monotonic() - started >= 4 / 10.0 - 0.01
    # A post's stamp is taken in its own thread after its turn: allow a loaded host 40 ms of
    # jitter per gap (unpaced, the three threads post within a few ms of each other).
    stamps = sorted(c.at for c in transport.posted())
    assert all(b - a >= 1 / 10.0 - 0.04 for a, b in itertools.pairwise(stamps))


def test_mentions_reach_the_transport_as_the_platform_knows_people(core: Core) -> None:
    transport = FakeTransport()
    seen: list[dict[str, str]] = []
    original = transport.post

    def post(**kwargs: object) -> object:
        people = kwargs["people"]
        seen.append({k: v.identity for k, v in people.items()})  # type: ignore[attr-defined]
        return original(**kwargs)  # type: ignore[arg-type]

    transport.post = post  # type: ignore[assignment,method-assign]
    send(core, DestinationKind.channel, "C0HOUCASES",
         Message(text=f"{mention('U0OFF1')} asks {mention('U0SUP1')}"))
    loop(core, transport).drain()
    assert seen == [{"U0OFF1": "U0OFF1", "U0SUP1": "U0SUP1"}]
