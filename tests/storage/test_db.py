"""Engines: on SQLite, writers take the write lock when they begin, after their turn in this
process; a long read does not."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from config.settings import Settings
from storage import db
from storage.db import TurnTaking, create_db_engine, reading, transaction, upgrade
from storage.models import DigestSent
from tests.conftest import START, on_postgres


@pytest.mark.skipif(on_postgres(), reason="SQLite's write lock")
def test_a_reads_only_session_does_not_hold_up_writers(settings: Settings) -> None:
    writer = create_db_engine(settings.database_url)
    reader = create_db_engine(settings.database_url, reads_only=True)
    upgrade(writer)
    try:
        with Session(reader) as session:
            session.execute(text("SELECT count(*) FROM record_entry")).one()  # read under way
            # With BEGIN IMMEDIATE the reader would hold the write lock: this would wait 30 s
            # and fail with "database is locked".
            with transaction(writer) as write:
                write.add(DigestSent(manager="U1", iso_year=2026, iso_week=48, sent_at=START))
    finally:
        reader.dispose()
        writer.dispose()


@pytest.mark.skipif(on_postgres(), reason="SQLite's write lock")
def test_a_reading_session_neither_waits_for_nor_holds_up_the_writer(settings: Settings) -> None:
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    try:
        with transaction(engine) as write:
            write.add(DigestSent(manager="U1", iso_year=2026, iso_week=48, sent_at=START))
            write.flush()  # this transaction holds the write lock from here on
            # A session begun with BEGIN IMMEDIATE would wait 30 s here, then fail.
            with reading(engine) as read:
                assert read.execute(text("SELECT count(*) FROM digest_sent")).scalar_one() == 0
    finally:
        engine.dispose()


def _no_busy_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite gives up at once when its write lock is taken: a writer that met another one
    at SQLite, instead of after its turn, fails with "database is locked"."""
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0)


@pytest.mark.skipif(on_postgres(), reason="SQLite's write lock")
def test_writers_in_one_process_take_turns_before_they_ask_sqlite(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_busy_wait(monkeypatch)
    engine = create_db_engine(settings.database_url, pool_size=8)
    upgrade(engine)
    start = threading.Barrier(6)

    def write(worker: int) -> None:
        start.wait()
        for week in range(1, 16):
            with transaction(engine) as session:
                session.add(DigestSent(manager=f"U{worker}", iso_year=2026, iso_week=week,
                                       sent_at=START))
                session.flush()
                time.sleep(0.001)  # hold the write lock long enough for the others to come

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            for done in [pool.submit(write, worker) for worker in range(6)]:
                done.result()  # without turns: OperationalError "database is locked"
        with Session(engine) as session:
            assert session.execute(text("SELECT count(*) FROM digest_sent")).scalar_one() == 90
    finally:
        engine.dispose()


@pytest.mark.skipif(on_postgres(), reason="SQLite's write lock")
def test_a_writer_gives_its_turn_back_however_its_transaction_ends(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    other = create_db_engine(settings.database_url)  # another process's writer, in effect
    try:
        with transaction(engine) as session:  # committed
            raw = session.connection().connection.dbapi_connection
            assert isinstance(raw, TurnTaking) and raw.turns.locked()
        assert not raw.turns.locked()

        with pytest.raises(RuntimeError), transaction(engine) as session:  # rolled back
            session.connection()
            raise RuntimeError("the step failed")
        assert not raw.turns.locked()

        session = Session(engine)  # closed with its connection thrown away
        session.connection().invalidate()
        session.close()
        assert not raw.turns.locked()

        _no_busy_wait(monkeypatch)
        refused = create_db_engine(settings.database_url)
        try:
            with transaction(other) as holding:
                holding.connection()  # the other writer holds SQLite's write lock
                with pytest.raises(OperationalError, match="locked"), \
                        transaction(refused) as session:
                    session.connection()  # its BEGIN IMMEDIATE fails at once
            with refused.connect() as connection:  # the failed BEGIN gave the turn back
                assert not connection.connection.dbapi_connection.turns.locked()
        finally:
            refused.dispose()
    finally:
        other.dispose()
        engine.dispose()
