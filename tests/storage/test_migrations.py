"""Schema upgrades: repeatable, and safe when replicas start together."""

from __future__ import annotations

from functools import partial

import pytest
from sqlalchemy import inspect

from storage.db import create_db_engine, needs_upgrade, upgrade
from tests.conftest import on_postgres
from tests.helpers import run_together


def test_upgrade_creates_every_table_and_is_repeatable(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        assert needs_upgrade(engine)
        upgrade(engine)
        upgrade(engine)
        assert not needs_upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"notice_case", "record_entry", "record_payload", "outbox", "reminder",
                "litigation_hold", "disposition_log", "usncb_request"} <= tables
    finally:
        engine.dispose()


@pytest.mark.skipif(not on_postgres(), reason="needs NOTICEBOT_TEST_DATABASE_URL (PostgreSQL)")
def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    engines = [create_db_engine(database_url) for _ in range(3)]
    try:
        run_together(*[partial(upgrade, engine) for engine in engines])
        assert not needs_upgrade(engines[0])
    finally:
        for engine in engines:
            engine.dispose()


def test_the_latest_row_of_a_message_key_is_found_through_an_index(database_url: str) -> None:
    """Every keyed message an interaction queues reads its key's latest outbox row first; without
    this index that read walks the whole outbox (migration 0013)."""
    engine = create_db_engine(database_url)
    try:
        upgrade(engine)
        indexes = {index["name"]: index["column_names"]
                   for index in inspect(engine).get_indexes("outbox")}
        assert indexes.get("ix_outbox_message_key_id") == ["message_key", "id"]
    finally:
        engine.dispose()
