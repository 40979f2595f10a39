"""Walk cases through the core the way a surface would: by clicking the buttons it offers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from click.testing import CliRunner, Result
from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from bot.core.service import Core
from bot.messages import ActionId, ActionValue, FormId, Message, Outcome
from handlers.cli import main
from storage.models import Case, OutboxMessage, RecordEntry
from tests.walk import CLEAN_REVIEW, FRO, OFFICER, TODAY, Move, played_by, walk_until

# Re-exported: tests take the people and the walk's values from here.
__all__ = ["CLEAN_REVIEW", "DESIGNEE", "FRO", "MANAGER", "OFFICER", "OFFICER_LAPSED", "OPLA",
           "RECORDS", "SUBJECT", "TODAY"]

T = TypeVar("T")

OFFICER_LAPSED, DESIGNEE, MANAGER, OPLA, RECORDS = (
    "U0OFF2", "U0SUP2", "U0MGR1", "U0OPLA1", "U0REC1")

SUBJECT = {
    "notice_reference": "A-4417/9-2024",
    "subject_name": "Ivan Testperson",
    "subject_identifiers": "DOB 1979-02-03, A-123-456-789",
    "issuing_country": "MX",
    "offense_summary": "Armed robbery of a bank branch",
    "notes": "Seen near the border crossing",
}


def open_case(core: Core, *, actor: str = OFFICER, **overrides: Any) -> str:
    values: dict[str, Any] = {
        "notice_type": "red_notice", "intended_use": "immigration",
        "extradition_pending": "no", **SUBJECT, **overrides,
    }
    outcome = core.submit(actor=actor, form=FormId.open_case, values=values, channel="C0TEST")
    assert outcome.ok, outcome
    assert outcome.case_id is not None
    return outcome.case_id


def buttons(core: Core, case_id: str) -> dict[ActionId, ActionValue]:
    """The buttons currently offered in the case's messages (latest version of each)."""
    latest: dict[str, Message] = {}
    with Session(core.engine) as session:
        for row in session.exec(select(OutboxMessage).where(OutboxMessage.case_id == case_id)
                                .order_by(col(OutboxMessage.id))):
            message = Message.from_dict(row.payload)
            latest[message.key or f"#{row.id}"] = message
    return {a.value.action: a.value for m in latest.values() for a in m.actions}


def press(core: Core, actor: str, case_id: str, action: ActionId,
          values: dict[str, Any] | None = None) -> Outcome:
    """Click the offered button; if it opens a form, submit `values` into it."""
    offered = buttons(core, case_id)
    value = offered.get(action, ActionValue(action, case_id))
    outcome = core.click(actor=actor, value=value)
    if outcome.form is None:
        return outcome
    form = outcome.form
    return core.submit(actor=actor, form=form.form_id, values=values or {},
                       case_id=form.case_id, ref=form.ref)


def case_row(core: Core, case_id: str) -> Case:
    with Session(core.engine) as session:
        found = session.get(Case, case_id)
        assert found is not None
        return found


def entries(core: Core, **where: Any) -> list[RecordEntry]:
    with Session(core.engine) as session:
        statement = select(RecordEntry).order_by(col(RecordEntry.seq))
        for key, value in where.items():
            statement = statement.where(getattr(RecordEntry, key) == value)
        return list(session.exec(statement))


def walk_core(core: Core, case_id: str, moves: Iterable[Move],
              after: Callable[[Move], None] | None = None) -> None:
    """The core driver of the canonical walk (tests/walk.py): press each button the case
    offers and submit its form, checking the stages the walk names."""
    for move in moves:
        outcome = press(core, move.actor, case_id, move.action, move.values)
        assert outcome.ok, (move, outcome)
        if move.reaches is not None:
            assert case_row(core, case_id).stage is move.reaches, move
        if after is not None:
            after(move)


# Prefixes of the canonical walk, for tests that start a case at a given step.
def to_review(core: Core, case_id: str, actor: str = OFFICER) -> None:
    walk_core(core, case_id, played_by(walk_until(ActionId.review), officer=actor))


def to_approval(core: Core, case_id: str, actor: str = OFFICER) -> None:
    walk_core(core, case_id, played_by(walk_until(ActionId.request_approval), officer=actor))


def to_documents(core: Core, case_id: str, actor: str = OFFICER, approver: str = FRO) -> None:
    walk_core(core, case_id, played_by(walk_until(ActionId.documents_sent), officer=actor,
                                       approver=approver))


def to_use_authorization(core: Core, case_id: str) -> None:
    walk_core(core, case_id, walk_until(ActionId.use_auth_sent))


@contextmanager
def transactions(engine: Engine) -> Iterator[list[object]]:
    """The transactions begun on `engine` inside the block, one item each."""
    begun: list[object] = []

    def count(connection: object) -> None:
        begun.append(connection)

    event.listen(engine, "begin", count)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", count)


def run_together(*contenders: Callable[[], T]) -> list[T]:
    """Run the contenders in threads released together by a barrier; return their results in
    order, failing the test if any raised or hung."""
    barrier = threading.Barrier(len(contenders))
    results: dict[int, T] = {}
    failures: list[BaseException] = []

    def run(index: int, contender: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = contender()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert len(results) == len(contenders)
    return [results[index] for index in range(len(contenders))]


def run_audit_verify(database_url: str, encryption_key: str, *args: str) -> Result:
    """`noticebot audit verify` as an operator runs it; call it from the `empty_cwd` fixture's
    folder so that no stray .env is read."""
    return CliRunner().invoke(main, ["audit", "verify", *args],
                              env={"NOTICEBOT_DATABASE_URL": database_url,
                                   "NOTICEBOT_ENV": "development",
                                   "NOTICEBOT_ENCRYPTION_KEYS": encryption_key})
