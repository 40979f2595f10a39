"""Enum columns: stored as their value in a VARCHAR, read back as their enum, and a value that
is not one of the enum's refused before it reaches the database."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from sqlmodel import Session, col, select, update

from bot.core.service import Core
from storage.enums import DestinationKind
from storage.models import OutboxMessage, OutboxStatus, Reminder, ReminderKind
from tests.conftest import START


def test_enum_columns_store_values_and_read_back_members(bare_core: Core) -> None:
    engine = bare_core.engine
    with Session(engine) as session, session.begin():
        session.add(Reminder(kind=ReminderKind.training, ref="U1", next_due_at=START,
                             created_at=START))
    with Session(engine) as session:
        stored = session.execute(text("SELECT kind FROM reminder")).scalar_one()
        assert stored == "training" and type(stored) is str  # the database stays readable
        reminder = session.exec(select(Reminder)).one()
        assert reminder.kind is ReminderKind.training


def test_a_value_outside_the_enum_never_reaches_the_database(bare_core: Core) -> None:
    engine = bare_core.engine
    with Session(engine) as session, session.begin():
        session.add(OutboxMessage(destination_kind=DestinationKind.channel, destination="C1",
                                  payload={},
                                  created_at=START))
    with Session(engine) as session, pytest.raises(StatementError, match="not a OutboxStatus"):
        # A typo of "sent" (or a value of another enum) in an update or a query is refused.
        session.execute(update(OutboxMessage).values(status="snet"))
    with Session(engine) as session, pytest.raises(StatementError, match="not a OutboxStatus"):
        session.exec(select(OutboxMessage).where(col(OutboxMessage.status) == "closed")).all()
    with Session(engine) as session, pytest.raises(StatementError,
                                                   match="not a DestinationKind"):
        session.execute(update(OutboxMessage).values(destination_kind="chanel"))
    with Session(engine) as session:
        row = session.exec(select(OutboxMessage)).one()
        assert row.status is OutboxStatus.pending
        assert row.destination_kind is DestinationKind.channel
