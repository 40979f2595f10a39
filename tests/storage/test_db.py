"""Engines: on SQLite, writers take the write lock when they begin; a long read does not."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session

from config.settings import Settings
from storage.db import create_db_engine, reading, transaction, upgrade
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
