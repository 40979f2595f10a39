"""Delivery keys: taken once, in the caller's transaction, by a statement compiled once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from bot.core.service import Core
from storage import deliveries
from storage.db import transaction
from storage.models import ProcessedDelivery
from tests.conftest import START


def test_a_key_is_taken_once_and_keeps_when_it_was_first_taken(bare_core: Core) -> None:
    later = START + timedelta(hours=1)
    with transaction(bare_core.engine) as session:
        assert deliveries.take(session, "click:U1:a1", at=START)
    with transaction(bare_core.engine) as session:
        assert not deliveries.take(session, "click:U1:a1", at=later)
        assert deliveries.take(session, "click:U1:a2", at=later)
    with transaction(bare_core.engine) as session:
        rows = session.exec(select(ProcessedDelivery.key, ProcessedDelivery.processed_at)
                            .order_by(col(ProcessedDelivery.key))).all()
    assert [(key, at) for key, at in rows] == [("click:U1:a1", START), ("click:U1:a2", later)]


def test_a_key_taken_in_a_transaction_that_rolls_back_is_free_again(bare_core: Core) -> None:
    with pytest.raises(RuntimeError), transaction(bare_core.engine) as session:
        assert deliveries.take(session, "click:U1:a1", at=START)
        raise RuntimeError("the interaction failed")
    with transaction(bare_core.engine) as session:
        assert deliveries.take(session, "click:U1:a1", at=START)


def test_taking_a_key_reuses_one_compiled_statement(bare_core: Core) -> None:
    """Every interaction takes a key: the statement must come from SQLAlchemy's cache, not be
    compiled again each time (the dialects' ON CONFLICT constructs are not cacheable)."""
    compiled: list[Any] = []

    def seen(statement: str, context: Any, **_: Any) -> None:
        if "processed_delivery" in statement:
            compiled.append(context.compiled)

    event.listen(bare_core.engine, "after_cursor_execute", seen, named=True)
    try:
        for n in range(3):
            with transaction(bare_core.engine) as session:
                deliveries.take(session, f"click:U1:a{n}", at=START)
    finally:
        event.remove(bare_core.engine, "after_cursor_execute", seen)
    assert len(compiled) == 3
    assert compiled[0] is compiled[1] is compiled[2]
