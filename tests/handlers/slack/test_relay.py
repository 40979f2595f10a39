"""The Slack outbox relay: exactly-once delivery through 429s, 5xx, timeouts, crashes and replicas
(spec R6, P5), with per-destination ordering and dead letters."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.clock import ManualClock, SystemClock
from bot.core.service import Core
from bot.delivery.credentials import CREDENTIALS_GRACE
from bot.messages import DestinationKind, Message
from config.settings import Settings
from handlers.slack.app import web_client
from handlers.slack.relay import EVENT_TYPE, SlackRelay, backoff
from storage import record
from storage.db import transaction
from storage.models import OutboxMessage, OutboxStatus, PlatformMessage, RecordEntry
from storage.vault import Vault
from tests.conftest import START, on_postgres
from tests.handlers.slack.fake_slack import Chaos, FakeSlack, Posted
from tests.helpers import RECORDS

ROOT = Path(__file__).resolve().parents[3]
ADMIN = RECORDS  # the sample roster's only admin
# On the tests' hand-moved clock, real-time pacing and lingering would only slow them down,
# and one thread keeps the order of injected failures fixed.
MANUAL: dict[str, Any] = {"pace": 0.0, "linger": 0.0, "concurrency": 1}


@pytest.fixture
def fake(fake_slack: FakeSlack) -> Iterator[FakeSlack]:
    yield fake_slack
    fake_slack.close()  # wake answers held back as timeouts


@pytest.fixture
def bare_client(fake: FakeSlack) -> WebClient:
    """No retry handlers and a short timeout: every failure comes back to the relay."""
    return WebClient(token="xoxb-test-token", base_url=fake.api_url, timeout=1,
                     retry_handlers=[])


@pytest.fixture
def relay(core: Core, bare_client: WebClient) -> SlackRelay:
    return SlackRelay(engine=core.engine, client=bare_client, clock=core.clock, **MANUAL)


def queue(engine: Engine, kind: str, destination: str, text: str, *, key: str | None = None,
          case_id: str | None = None, at: datetime = START) -> int:
    with transaction(engine) as session:
        row = OutboxMessage(created_at=at, case_id=case_id, destination_kind=DestinationKind(kind),
                            destination=destination, message_key=key,
                            payload=Message(text=text, key=key).to_dict())
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def rows(engine: Engine) -> dict[int, OutboxMessage]:
    with Session(engine) as session:
        return {r.id: r for r in session.exec(select(OutboxMessage)) if r.id is not None}


def set_row(engine: Engine, row_id: int, **values: Any) -> None:
    with transaction(engine) as session:
        session.execute(update(OutboxMessage).where(col(OutboxMessage.id) == row_id)
                        .values(**values))


def posts_to(fake: FakeSlack, channel: str) -> int:
    return sum(1 for body in fake.of("chat.postMessage") if body.get("channel") == channel)


def metadata(outbox_id: int) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"outbox_id": outbox_id}}


# --- failures -------------------------------------------------------------------------------


def test_rate_limit_delays_only_that_rows_next_attempt(
    core: Core, slack_settings: Settings, fake: FakeSlack
) -> None:
    # The client the app builds: its rate-limit handler must not sleep through 30 seconds.
    relay = SlackRelay(engine=core.engine, client=web_client(slack_settings), clock=core.clock,
                       **MANUAL)
    clock, engine = core.clock, core.engine
    first = queue(engine, "channel", "C1", "one")
    second = queue(engine, "channel", "C1", "two")
    no_header = queue(engine, "channel", "C3", "three")
    other = queue(engine, "channel", "C2", "four")
    fake.fail_next("chat.postMessage", 429, {"Retry-After": "30"})
    fake.fail_next("chat.postMessage", 429)  # no Retry-After: 1 s

    assert relay.drain() == 1  # "four": the 429s held back only their own rows
    found = rows(engine)
    assert (found[first].status, found[first].error) == (OutboxStatus.pending, "ratelimited")
    assert found[first].next_attempt_at == START + timedelta(seconds=30)
    assert found[no_header].next_attempt_at == START + timedelta(seconds=1)
    assert found[second].status == OutboxStatus.pending and found[second].attempts == 0
    assert found[other].status == OutboxStatus.sent

    clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    assert relay.drain() == 1  # "three" only
    clock.advance(timedelta(seconds=28))  # type: ignore[attr-defined]
    assert relay.drain() == 0
    clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    assert relay.drain() == 2
    assert fake.delivered() == Counter({first: 1, second: 1, other: 1, no_header: 1})
    assert [p.outbox_id for p in fake.posted("C1")] == [first, second]
    assert posts_to(fake, "C1") == 3
    assert not fake.of("conversations.history")  # a 429 means not posted: nothing to look up
    assert all(r.status == OutboxStatus.sent for r in rows(engine).values())


def test_server_errors_and_timeouts_back_off_then_deliver_once(
    core: Core, relay: SlackRelay, fake: FakeSlack
) -> None:
    clock, engine = core.clock, core.engine
    failing = queue(engine, "channel", "C1", "5xx twice")
    slow = queue(engine, "channel", "C2", "times out, but Slack posted it")
    lost = queue(engine, "dm", "U0OFF1", "times out before Slack posted it")
    fake.fail_next("chat.postMessage", 503)
    fake.timeout_next("chat.postMessage", seconds=2, deliver=True)
    fake.timeout_next("chat.postMessage", seconds=2, deliver=False)

    assert relay.drain() == 0
    found = rows(engine)
    assert found[failing].error == "uncertain: http_503"
    assert found[slow].error == found[lost].error == "uncertain: timeout"
    for row_id in (failing, slow, lost):
        assert found[row_id].status == OutboxStatus.pending
        assert found[row_id].next_attempt_at == START + timedelta(seconds=1)
    assert relay.drain() == 0  # not due yet

    clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    fake.fail_next("chat.postMessage", 500)
    assert relay.drain() == 2  # slow: found in history; lost: posted again
    found = rows(engine)
    assert found[failing].next_attempt_at == START + timedelta(seconds=3)  # 2nd failure: 2 s
    assert found[slow].platform_ref == fake.posted("C2")[0].ts
    assert posts_to(fake, "C2") == 1  # the timed-out post was not repeated
    clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    assert relay.drain() == 0
    clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    assert relay.drain() == 1
    assert fake.delivered() == Counter({failing: 1, slow: 1, lost: 1})
    assert posts_to(fake, "C1") == 3 and posts_to(fake, "DU0OFF1") == 2
    assert all(r.status == OutboxStatus.sent and r.error is None for r in rows(engine).values())


def test_the_apps_retry_handlers_never_repost_after_a_timeout(
    core: Core, fake: FakeSlack
) -> None:
    client = web_client(Settings(_env_file=None, slack_api_url=fake.api_url,
                                 slack_bot_token="xoxb-test-token"))
    client.timeout = 1
    relay = SlackRelay(engine=core.engine, client=client, clock=core.clock, **MANUAL)
    row = queue(core.engine, "channel", "C1", "hello")
    fake.fail_next("chat.postMessage", 503)  # back to the relay, not retried inside the call
    fake.timeout_next("chat.postMessage", seconds=2, deliver=True)  # ... nor is a timeout
    assert relay.drain() == 0
    assert posts_to(fake, "C1") == 1 and fake.delivered() == Counter()
    core.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    assert relay.drain() == 0  # timed out, but Slack stored it
    assert posts_to(fake, "C1") == 2 and fake.delivered() == Counter({row: 1})
    core.clock.advance(timedelta(seconds=2))  # type: ignore[attr-defined]
    assert relay.drain() == 1  # found in the channel's history, not posted again
    assert posts_to(fake, "C1") == 2 and fake.delivered() == Counter({row: 1})
    # The app's own client keeps its handlers; the relay's copy has none (R6).
    assert any(type(h) is RateLimitErrorRetryHandler for h in client.retry_handlers)
    assert not any(type(h) is RateLimitErrorRetryHandler for h in relay.api.retry_handlers)
    assert relay.api.retry_handlers == []


def test_r6_a_5xx_from_a_post_that_went_through_is_not_posted_twice(
    core: Core, fake: FakeSlack
) -> None:
    """The attack run's case: slack_sdk's server-error handler re-posted inside the call,
    without looking in the channel first, so each injected 5xx-after-storing doubled a post."""
    client = web_client(Settings(_env_file=None, slack_api_url=fake.api_url,
                                 slack_bot_token="xoxb-test-token"))
    relay = SlackRelay(engine=core.engine, client=client, clock=core.clock, **MANUAL)
    first = queue(core.engine, "channel", "C1", "one")
    second = queue(core.engine, "channel", "C2", "two")
    fake.fail_next("chat.postMessage", 503, deliver=True)
    fake.fail_next("chat.postMessage", 502, deliver=True)
    for _ in range(6):
        relay.drain()
        core.clock.advance(timedelta(seconds=4))  # type: ignore[attr-defined]
    assert fake.delivered() == Counter({first: 1, second: 1})
    assert all(r.status == OutboxStatus.sent for r in rows(core.engine).values())


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4, 9, 10, 50)] == [
        1, 2, 4, 8, 256, 300, 300]
    assert backoff(5, timedelta(seconds=4)) == timedelta(seconds=4)


def test_permanent_error_dead_letters_with_record_entry_and_admin_alert(
    core: Core, relay: SlackRelay, fake: FakeSlack, settings: Settings
) -> None:
    engine = core.engine
    fake.channel_errors["CGONE"] = "channel_not_found"
    dead = queue(engine, "channel", "CGONE", "Ivan Testperson, armed robbery",
                 case_id="ICE-2026-0042")
    after = queue(engine, "channel", "CGONE", "next one to the same channel",
                  case_id="ICE-2026-0042")

    assert relay.drain() == 2  # the admin's alerts, one per dead letter
    found = rows(engine)
    assert (found[dead].status, found[dead].error) == (OutboxStatus.dead, "channel_not_found")
    assert found[after].status == OutboxStatus.dead  # its successor is tried, and fails too
    alerts = [r for r in found.values() if r.alert]
    assert [(a.destination_kind, a.destination, a.case_id, a.status) for a in alerts] == [
        ("dm", ADMIN, "ICE-2026-0042", OutboxStatus.sent)] * 2
    shown = fake.posted(f"D{ADMIN}")[0]
    assert shown.outbox_id == alerts[0].id
    assert f"Outbox message {dead} for case ICE-2026-0042" in shown.text
    assert "channel_not_found" in shown.text and "Ivan" not in str(shown.blocks)

    with Session(engine) as session:
        letters = list(session.exec(select(RecordEntry)
                                    .where(RecordEntry.action == "outbox.dead_letter")
                                    .order_by(col(RecordEntry.seq))))
        assert [(e.actor, e.kind, e.case_id) for e in letters][:1] == [
            ("noticebot:relay", "state", "ICE-2026-0042")]
        body = record.payload_of(session, letters[0].seq)
        assert body is not None
        assert (body["outbox_id"], body["error"], body["alerted"]) == (
            dead, "channel_not_found", [ADMIN])
        assert record.verify(session, Vault(settings.vault_keys)).ok


def test_an_alert_that_dies_alerts_no_one(
    core: Core, relay: SlackRelay, fake: FakeSlack
) -> None:
    engine = core.engine
    fake.channel_errors["CGONE"] = "is_archived"
    fake.channel_errors[ADMIN] = "user_not_found"  # conversations.open for the admin
    dead = queue(engine, "channel", "CGONE", "x", case_id="ICE-2026-0007")
    assert relay.drain() == 0
    found = rows(engine)
    alerts = [r for r in found.values() if r.alert]
    assert len(alerts) == 1 and alerts[0].status == OutboxStatus.dead
    assert found[dead].status == OutboxStatus.dead and len(found) == 2
    with Session(engine) as session:
        letters = session.exec(select(RecordEntry)
                               .where(RecordEntry.action == "outbox.dead_letter")).all()
        assert len(letters) == 2  # the message and its alert; no alert about the alert


# --- ordering -------------------------------------------------------------------------------


def test_thread_replies_wait_for_their_root_and_keep_their_order(
    core: Core, relay: SlackRelay, fake: FakeSlack
) -> None:
    clock, engine = core.clock, core.engine
    root = queue(engine, "channel", "C1", "root", key="CASE1:root", case_id="CASE1")
    reply1 = queue(engine, "thread", "CASE1", "reply 1", case_id="CASE1")
    root_v2 = queue(engine, "channel", "C1", "root, updated", key="CASE1:root",
                    case_id="CASE1")
    reply2 = queue(engine, "thread", "CASE1", "reply 2", case_id="CASE1")
    orphan = queue(engine, "thread", "CASE9", "no root anywhere", case_id="CASE9")
    other_root = queue(engine, "channel", "C2", "root 2", key="CASE2:root", case_id="CASE2")
    other_reply = queue(engine, "thread", "CASE2", "reply", case_id="CASE2")
    fake.fail_next("chat.postMessage", 503)  # the first root

    assert relay.drain() == 2  # only the other case goes on
    found = rows(engine)
    assert found[root].status == OutboxStatus.pending
    assert all(found[r].attempts == 0 for r in (reply1, root_v2, reply2, orphan))
    assert [p.outbox_id for p in fake.posted("C2")] == [other_root, other_reply]
    assert fake.posted("C2")[1].thread_ts == fake.posted("C2")[0].ts

    clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    assert relay.drain() == 4
    posted = fake.posted("C1")
    assert [p.outbox_id for p in posted] == [root, reply1, reply2]
    assert posted[0].thread_ts is None
    assert posted[1].thread_ts == posted[2].thread_ts == posted[0].ts
    updated = fake.of("chat.update")
    assert [(u["channel"], u["ts"]) for u in updated] == [("C1", posted[0].ts)]
    assert posted[0].text == "root, updated"
    found = rows(engine)
    assert found[root_v2].platform_ref == posted[0].ts
    assert found[orphan].status == OutboxStatus.pending and found[orphan].attempts == 0
    with Session(engine) as session:
        known = session.get(PlatformMessage, ("CASE1:root", "slack"))
        assert known is not None and (known.channel, known.ts) == ("C1", posted[0].ts)


def test_one_message_in_flight_per_slack_channel(
    core: Core, relay: SlackRelay, fake: FakeSlack
) -> None:
    engine = core.engine
    with transaction(engine) as session:
        session.add(PlatformMessage(message_key="CASE3:root", channel="C1", ts="1.000001",
                                    updated_at=START))
    busy = queue(engine, "channel", "C1", "in flight elsewhere")
    set_row(engine, busy, status=OutboxStatus.sending, claimed_at=START, attempts=1)
    reply = queue(engine, "thread", "CASE3", "a reply in C1's thread")
    elsewhere = queue(engine, "channel", "C2", "free channel")
    assert relay.drain() == 1
    found = rows(engine)
    assert found[elsewhere].status == OutboxStatus.sent
    assert found[reply].attempts == 0 and found[busy].status == OutboxStatus.sending


def test_relay_paces_each_conversation_and_sends_to_others_meanwhile(
    core: Core, bare_client: WebClient, fake: FakeSlack
) -> None:
    # The real clock: pacing and lingering run on real time, as Slack's limits do. A pace of a
    # whole second leaves a loaded machine (CI) ample time to send the other four first; at
    # 0.3 s the five first posts once overran it.
    relay = SlackRelay(engine=core.engine, client=bare_client, clock=SystemClock(),
                       pace=1.0, linger=3.0, concurrency=4)
    fake.latency = 0.05
    stored: dict[int, float] = {}
    fake.after_post = lambda posted: stored.setdefault(posted.outbox_id or 0, time.monotonic())
    busy = [queue(core.engine, "channel", "C1", f"C1 #{n}") for n in range(3)]
    others = [queue(core.engine, "channel", f"C{n}", "one") for n in range(2, 6)]

    assert relay.drain() == 7  # lingered for C1's paced rows instead of leaving them
    gaps = [stored[b] - stored[a] for a, b in itertools.pairwise(busy)]
    assert min(gaps) >= 1.0, gaps
    assert max(stored[o] for o in others) < stored[busy[1]]  # not held up behind C1
    assert fake.max_in_flight == 1 and fake.max_in_flight_overall > 1
    assert len(fake.of("chat.postMessage")) == 7  # paced, so Slack never had to say 429


def test_rows_queued_meanwhile_wake_a_lingering_drain(
    core: Core, bare_client: WebClient, fake: FakeSlack
) -> None:
    relay = SlackRelay(engine=core.engine, client=bare_client, clock=SystemClock(),
                       pace=1.0, linger=3.0, concurrency=1)
    queue(core.engine, "channel", "C1", "one")
    queue(core.engine, "channel", "C1", "two")  # paced: the drain lingers a second for it

    def meanwhile() -> None:
        fake.wait_for(lambda: len(fake.posted("C1")) == 1)
        queue(core.engine, "channel", "C2", "new case")
        relay.nudge()

    other = threading.Thread(target=meanwhile)
    other.start()
    assert relay.drain() == 3
    other.join()
    # Woken, the lingering drain sent the new row at once instead of after C1's pace.
    assert [c.body["channel"] for c in fake.calls if c.method == "chat.postMessage"] == [
        "C1", "C2", "C1"]


def test_a_drain_does_not_linger_for_rows_due_later(
    core: Core, bare_client: WebClient, fake: FakeSlack
) -> None:
    relay = SlackRelay(engine=core.engine, client=bare_client, clock=SystemClock(),
                       linger=0.5)
    later = queue(core.engine, "channel", "C1", "later")
    set_row(core.engine, later, next_attempt_at=datetime.now(UTC) + timedelta(minutes=5))
    started = time.monotonic()
    assert relay.drain() == 0
    assert time.monotonic() - started < 5  # returned instead of waiting five minutes
    assert rows(core.engine)[later].status == OutboxStatus.pending


# --- crash safety -----------------------------------------------------------------------------


def test_stale_claim_that_reached_slack_is_marked_sent_without_a_second_post(
    core: Core, relay: SlackRelay, bare_client: WebClient, fake: FakeSlack
) -> None:
    clock, engine = core.clock, core.engine
    reached = queue(engine, "channel", "C1", "hello", key="CASE5:root", case_id="CASE5")
    first = bare_client.chat_postMessage(channel="C1", text="hello", metadata=metadata(reached))
    never = queue(engine, "channel", "C2", "died before posting")
    fresh = queue(engine, "channel", "C3", "still being sent by a live relay")
    behind = queue(engine, "channel", "C3", "waits for it")
    for row_id, age in ((reached, 120), (never, 300), (fresh, 10)):
        set_row(engine, row_id, status=OutboxStatus.sending, attempts=1,
                claimed_at=START - timedelta(seconds=age))

    assert relay.drain() == 2
    found = rows(engine)
    assert (found[reached].status, found[reached].platform_ref) == (OutboxStatus.sent,
                                                                    first["ts"])
    assert posts_to(fake, "C1") == 1 and posts_to(fake, "C2") == 1
    assert found[fresh].status == OutboxStatus.sending and found[behind].attempts == 0
    with Session(engine) as session:
        known = session.get(PlatformMessage, ("CASE5:root", "slack"))
        assert known is not None and known.ts == first["ts"]
    history = fake.of("conversations.history")
    assert {h["channel"] for h in history} == {"C1", "C2"}
    assert all(h["include_all_metadata"] in ("1", "true", True) for h in history)

    clock.advance(timedelta(seconds=60))  # type: ignore[attr-defined]
    assert relay.drain() == 2  # the live relay's lease ran out: taken over, then its successor
    assert [p.outbox_id for p in fake.posted("C3")] == [fresh, behind]
    assert fake.delivered() == Counter({reached: 1, never: 1, fresh: 1, behind: 1})


def test_stale_thread_reply_is_looked_up_in_the_thread(
    core: Core, relay: SlackRelay, bare_client: WebClient, fake: FakeSlack
) -> None:
    engine = core.engine
    root = queue(engine, "channel", "C1", "root", key="CASE6:root", case_id="CASE6")
    assert relay.drain() == 1
    root_ts = fake.posted("C1")[0].ts
    reply = queue(engine, "thread", "CASE6", "reply", case_id="CASE6")
    bare_client.chat_postMessage(channel="C1", thread_ts=root_ts, text="reply",
                                 metadata=metadata(reply))
    set_row(engine, reply, status=OutboxStatus.sending, attempts=1,
            claimed_at=START - timedelta(minutes=5))
    assert relay.drain() == 1
    assert [(r["channel"], r["ts"]) for r in fake.of("conversations.replies")] == [
        ("C1", root_ts)]
    assert fake.delivered() == Counter({root: 1, reply: 1})


def test_lookup_pages_through_a_busy_channel(
    core: Core, relay: SlackRelay, fake: FakeSlack
) -> None:
    engine = core.engine
    row = queue(engine, "channel", "C1", "posted before 300 others")
    with fake._lock:
        fake.messages["C1"] = [Posted("C1", f"1600000000.{n:06d}", "x", [],
                                      metadata=metadata(row) if n == 0 else None)
                               for n in range(301)]
    set_row(engine, row, status=OutboxStatus.sending, attempts=1,
            claimed_at=START - timedelta(minutes=5))
    assert relay.drain() == 1
    assert len(fake.of("conversations.history")) == 2
    assert rows(engine)[row].platform_ref == "1600000000.000000"
    assert posts_to(fake, "C1") == 0


# --- R6: a relay process killed mid-run, restarted; replicas ----------------------------------

CHANNELS, CASES, USERS, ROUNDS = 30, 10, 10, 8


def seed(engine: Engine) -> tuple[list[int], dict[int, str]]:
    """300 rows over 30 channels, interleaved: case roots with 4 thread replies each and a later
    root update, DMs, and plain channel messages. Returns (ids that post a new message,
    {update id: its case})."""
    posts: list[int] = []
    updates: dict[int, str] = {}
    now = datetime.now(UTC)
    for rnd in range(ROUNDS):
        for c in range(CHANNELS):
            channel, case = f"C{c:02d}", f"CASE{c:02d}"
            if c < CASES and rnd in (0, 6):
                row = queue(engine, "channel", channel, f"{case} root v{rnd}",
                            key=f"{case}:root", case_id=case, at=now)
                if rnd == 0:
                    posts.append(row)
                else:
                    updates[row] = case
            else:
                posts.append(queue(engine, "channel", channel, f"{channel} #{rnd}", at=now))
            if c < CASES and 1 <= rnd <= 4:
                posts.append(queue(engine, "thread", case, f"{case} reply {rnd}",
                                   case_id=case, at=now))
        if rnd < 2:
            posts += [queue(engine, "dm", f"U{u:02d}", f"DM {rnd}", at=now) for u in range(USERS)]
    assert len(posts) + len(updates) == 300
    return posts, updates


class Workers:
    """Relay processes (tests/handlers/slack/relay_worker.py), killed or awaited by the test."""

    def __init__(self, database_url: str, fake: FakeSlack, logs: Path) -> None:
        self.args = ["--database-url", database_url, "--api-url", fake.api_url,
                     "--timeout", "0.3", "--max-seconds", "50"]
        self.logs = logs
        self.running: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, *, lease: float) -> subprocess.Popen[bytes]:
        """A relay process; `lease` must outlast its slowest send (client retries included)."""
        log = (self.logs / f"worker-{len(self.running)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.handlers.slack.relay_worker", *self.args,
             "--lease", str(lease)],
            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=log)
        self.running.append((process, log))
        return process

    def output(self, *, tail: int = 3000) -> str:
        return "\n".join(path.read_text(errors="replace")[-tail:]
                         for path in sorted(self.logs.glob("worker-*.log")))

    def close(self) -> None:
        for process, log in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
            log.close()


@pytest.fixture
def workers(core: Core, database_url: str, fake: FakeSlack,
            tmp_path: Path) -> Iterator[Workers]:
    # Trouble on every relay call: 429s long enough for the relay to handle, 503s retried by
    # the client or the relay, timeouts of which half did post, per-channel rate limiting.
    fake.chaos = Chaos(seed=6, rate_limited=0.04, server_error=0.02, timeout=0.04,
                       retry_after=3, timeout_seconds=0.8)
    fake.latency = 0.01
    fake.rate_per_channel_per_second = 2
    fake.rate_retry_after = 3
    started = Workers(database_url, fake, tmp_path)
    yield started
    started.close()


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def check_exactly_once(engine: Engine, fake: FakeSlack, posts: list[int],
                       updates: dict[int, str]) -> None:
    found = rows(engine)
    stuck = {i: (r.status, r.error) for i, r in found.items() if r.status != OutboxStatus.sent}
    assert not stuck, stuck
    delivered = fake.delivered()
    assert {i: n for i, n in delivered.items() if n != 1} == {}, "duplicated"
    assert sorted(delivered) == sorted(posts), "lost or unexpected"
    with Session(engine) as session:
        roots = {pm.message_key: pm for pm in session.exec(select(PlatformMessage))}
    for row_id, case in updates.items():  # updates edited the case's root in place
        assert found[row_id].platform_ref == roots[f"{case}:root"].ts
    # Order kept per channel and per thread, and replies sit under their case's root.
    by_ts = {ts: case.removesuffix(":root") for case, pm in
             ((k, v) for k, v in roots.items()) for ts in [pm.ts]}
    with fake._lock:
        channels = {name: list(posted) for name, posted in fake.messages.items()}
    for posted in channels.values():
        lanes: dict[str | None, list[int]] = {}
        for message in posted:
            assert message.outbox_id is not None
            lanes.setdefault(message.thread_ts, []).append(message.outbox_id)
            if message.thread_ts is not None:
                assert found[message.outbox_id].destination == by_ts[message.thread_ts]
        for ids in lanes.values():
            assert ids == sorted(ids)
    assert fake.max_in_flight == 1


def test_relay_killed_mid_run_and_restarted_delivers_everything_exactly_once(
    core: Core, fake: FakeSlack, workers: Workers
) -> None:
    posts, updates = seed(core.engine)

    def delivered() -> int:
        return len(fake.delivered())

    for target in (70, 160):
        # One relay at a time: a short lease (nobody alive competes for its claims).
        worker, killed = workers.start(lease=3), threading.Event()

        def kill_mid_post(_: Posted, worker: subprocess.Popen[bytes] = worker,
                          killed: threading.Event = killed, target: int = target) -> None:
            # Slack has stored the post; the relay dies before hearing back: its row stays
            # 'sending' and the next relay must find the post instead of sending it again.
            if delivered() >= target and not killed.is_set():
                worker.send_signal(signal.SIGKILL)
                killed.set()

        fake.after_post = kill_mid_post
        if not killed.wait(timeout=25):
            raise AssertionError(workers.output())
        fake.after_post = None
        worker.wait()
    last = workers.start(lease=3)
    assert last.wait(timeout=50) == 0, workers.output()
    check_exactly_once(core.engine, fake, posts, updates)
    assert max(r.attempts for r in rows(core.engine).values()) > 1  # trouble did happen
    assert workers.output(tail=10**7).count("taking over a claim") >= 2  # both kills did


@pytest.mark.skipif(not on_postgres(), reason="replicas need PostgreSQL")
def test_two_relays_at_once_one_killed_deliver_everything_exactly_once(
    core: Core, fake: FakeSlack, workers: Workers
) -> None:
    posts, updates = seed(core.engine)
    # Two live relays: the lease must outlast a send with the client's in-process retries.
    doomed, survivor = workers.start(lease=8), workers.start(lease=8)
    try:
        fake.wait_for(lambda: len(fake.delivered()) >= 120, timeout=25)
    except AssertionError:
        raise AssertionError(workers.output()) from None
    kill(doomed)
    assert survivor.wait(timeout=50) == 0, workers.output()
    check_exactly_once(core.engine, fake, posts, updates)


def test_stop_ends_a_lingering_drain_with_the_message_in_hand_sent(
    core: Core, bare_client: WebClient, fake: FakeSlack
) -> None:
    # A stopping process (SIGTERM) must not linger for paced rows: it finishes what it holds
    # and leaves the rest in the outbox for the next relay.
    relay = SlackRelay(engine=core.engine, client=bare_client, clock=SystemClock(),
                       pace=6.0, linger=10.0, concurrency=1)
    first = queue(core.engine, "channel", "C1", "one")
    second = queue(core.engine, "channel", "C1", "two")  # paced 6 s behind the first

    def stop_soon() -> None:
        fake.wait_for(lambda: len(fake.posted("C1")) == 1)
        relay.stop()

    stopper = threading.Thread(target=stop_soon)
    stopper.start()
    started = time.monotonic()
    assert relay.drain() == 1
    stopper.join()
    assert time.monotonic() - started < 4  # well short of the 6 s pace it would have waited
    found = rows(core.engine)
    assert found[first].status == OutboxStatus.sent
    assert found[second].status == OutboxStatus.pending and found[second].attempts == 0


def test_a_refused_token_keeps_messages_waiting_and_is_recorded_once_it_lasts(
    core: Core, relay: SlackRelay, fake: FakeSlack
) -> None:
    """A revoked or wrong bot token is no message's fault: nothing is dead-lettered, and past
    the grace the record says so (Slack alone: no other platform to tell an admin on)."""
    assert isinstance(core.clock, ManualClock)
    engine = core.engine
    waiting = queue(engine, "channel", "C0HOUCASES", "kept through the outage")
    fake.fail_next("chat.postMessage", 200, error="invalid_auth")
    fake.fail_next("chat.postMessage", 200, error="token_revoked")
    assert relay.drain() == 0
    assert rows(engine)[waiting].status == OutboxStatus.pending
    core.clock.advance(CREDENTIALS_GRACE + timedelta(seconds=1))
    assert relay.drain() == 0
    assert (rows(engine)[waiting].status, rows(engine)[waiting].error) == (
        OutboxStatus.pending, "token_revoked")
    core.clock.advance(timedelta(minutes=1))
    assert relay.drain() == 1
    assert rows(engine)[waiting].status == OutboxStatus.sent
    assert [p.text for p in fake.posted("C0HOUCASES")] == ["kept through the outage"]
    with Session(engine) as session:
        said = {entry.action: record.payload_of(session, entry.seq) for entry in session.exec(
            select(RecordEntry).where(col(RecordEntry.action).startswith("delivery.")))}
    refused, accepted = said["delivery.credentials_refused"], said[
        "delivery.credentials_accepted"]
    assert refused is not None and accepted is not None
    assert (refused["platform"], refused["error"]) == ("slack", "token_revoked")
    assert refused["alerted"] == [] and refused["not_reachable"] == [ADMIN]
    assert not [r for r in rows(engine).values() if r.alert or r.status == OutboxStatus.dead]
