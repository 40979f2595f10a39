"""Delivery keys: taken once, in the caller's transaction, by a statement compiled once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import col, select

from config.settings import Settings
from storage import deliveries
from storage.db import create_db_engine, transaction, upgrade
from storage.models import ProcessedDelivery
from tests.conftest import START


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_a_key_is_taken_once_and_keeps_when_it_was_first_taken(engine: Engine) -> None:
    with transaction(engine) as session:
        assert deliveries.take(session, "click:U1:a1", at=START)
    later = START.replace(hour=START.hour + 1)
    with transaction(engine) as session:
        assert not deliveries.take(session, "click:U1:a1", at=later)
        assert deliveries.take(session, "click:U1:a2", at=later)
    with transaction(engine) as session:
        rows = session.exec(select(ProcessedDelivery.key, ProcessedDelivery.processed_at)
                            .order_by(col(ProcessedDelivery.key))).all()
    assert [(key, at) for key, at in rows] == [("click:U1:a1", START), ("click:U1:a2", later)]


def test_a_key_taken_in_a_transaction_that_rolls_back_is_free_again(engine: Engine) -> None:
    try:
        with transaction(engine) as session:
            assert deliveries.take(session, "click:U1:a1", at=START)
            raise RuntimeError("the interaction failed")
    except RuntimeError:
        pass
    with transaction(engine) as session:
        assert deliveries.take(session, "click:U1:a1", at=START)


def test_taking_a_key_reuses_one_compiled_statement(engine: Engine) -> None:
    """Every interaction takes a key: the statement must come from SQLAlchemy's cache, not be
    compiled again each time (the dialects' ON CONFLICT constructs are not cacheable)."""
    compiled: list[Any] = []

    def seen(*args: Any) -> None:  # (conn, cursor, statement, parameters, context, many)
        statement, context = args[2], args[4]
        if "processed_delivery" in statement:
            compiled.append(context.compiled)

    event.listen(engine, "after_cursor_execute", seen)
    try:
        for n in range(3):
            with transaction(engine) as session:
                deliveries.take(session, f"click:U1:a{n}", at=START)
    finally:
        event.remove(engine, "after_cursor_execute", seen)
    assert len(compiled) == 3
    assert compiled[0] is compiled[1] is compiled[2]
