"""The relay thread is woken by commits that queued outbox rows, and only by those."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from bot.core.context import unit_of_work
from bot.core.service import Core
from bot.messages import DestinationKind, Message
from bot.schedule.relay_loop import OutboxWatch, RelayLoop
from storage.db import create_db_engine
from tests.helpers import OFFICER, open_case


def _queue(core: Core, *, engine: Engine | None = None, fail: bool = False) -> None:
    with unit_of_work(engine or core.engine, clock=core.clock, settings=core.settings,
                      actor="test") as ctx:
        ctx.send(DestinationKind.dm, OFFICER, Message(title="hello", text="hi"))
        if fail:
            raise RuntimeError("rolled back")


def _visible(engine: Engine) -> int:
    """Outbox rows another connection sees (outside any SQLAlchemy transaction hooks)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT count(*) FROM outbox")
        row = cursor.fetchone()
        assert row is not None
        return int(row[0])
    finally:
        raw.close()


def test_watch_calls_back_after_commits_that_queued_outbox_rows_only(core: Core) -> None:
    woken: list[int] = []
    watch = OutboxWatch(core.engine, lambda: woken.append(1))
    watch.start()
    try:
        _queue(core)
        assert woken == [1]
        assert core.command(actor=OFFICER, text="help").ok  # a unit of work, nothing queued
        assert woken == [1]
        with pytest.raises(RuntimeError):
            _queue(core, fail=True)
        assert woken == [1]
        open_case(core)  # the core's own path: the case's root message is queued
        assert woken == [1, 1]
        other = create_db_engine(core.settings.database_url)
        try:
            _queue(core, engine=other)  # another engine's commits are not this relay's
        finally:
            other.dispose()
        assert woken == [1, 1]
    finally:
        watch.stop()
    _queue(core)
    assert woken == [1, 1]


def test_watch_calls_back_once_the_rows_are_visible_to_a_relay(core: Core) -> None:
    # Rows flushed inside the core's transaction are not yet committed.
    seen: list[int] = []
    watch = OutboxWatch(core.engine, lambda: seen.append(_visible(core.engine)))
    watch.start()
    try:
        open_case(core)
    finally:
        watch.stop()
    assert len(seen) == 1 and seen[0] > 0


def test_loop_delivers_when_a_commit_queued_rows(core: Core) -> None:
    delivered = threading.Event()
    # No interval: only a wake can make it deliver.
    loop = RelayLoop(delivered.set, engine=core.engine, interval=None).start()
    try:
        assert not delivered.is_set()
        _queue(core)
        assert delivered.wait(timeout=10)
    finally:
        loop.stop()
    assert loop.watch is not None and not loop.watch._listening


def test_loop_survives_a_failed_delivery_and_stops(core: Core) -> None:
    failed, again = threading.Event(), threading.Event()

    def deliver() -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("Slack is down")
        again.set()

    loop = RelayLoop(deliver, engine=None, interval=None).start()
    try:
        loop.wake()
        assert failed.wait(timeout=10)
        loop.wake()
        assert again.wait(timeout=10)
    finally:
        loop.stop()
    assert "outbox-relay" not in {t.name for t in threading.enumerate()}


def test_a_wake_does_not_wait_for_a_pass_under_way() -> None:
    first, second, release = threading.Event(), threading.Event(), threading.Event()

    def deliver() -> None:
        if not first.is_set():
            first.set()
            release.wait(timeout=30)  # a pass lingering for a paced row
            return
        second.set()

    loop = RelayLoop(deliver, engine=None, interval=None, parallel=2).start()
    try:
        loop.wake()
        assert first.wait(timeout=10)
        loop.wake()  # something new was queued meanwhile
        assert second.wait(timeout=10)
    finally:
        release.set()
        loop.stop()
