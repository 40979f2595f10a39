"""Engines: on SQLite, writers take the write lock when they begin; a long read does not."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session

from config.settings import Settings
from storage.db import create_db_engine, transaction, upgrade
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
