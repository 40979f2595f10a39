"""A step that is refused or given invalid input changes nothing, but its attempt and the
reason are recorded, in the interaction's one transaction (R7)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from bot.core.context import Ctx
from bot.core.errors import FormErrors, Refused
from bot.core.service import Core
from bot.messages import DestinationKind, Message, Outcome, RefusalCode
from storage.models import OutboxMessage
from tests.helpers import OFFICER, entries, transactions


def queue_then(stop: Exception | None) -> Callable[[Ctx], Outcome]:
    """A step that queues a message and records a state change, then stops with `stop`."""
    def step(ctx: Ctx) -> Outcome:
        ctx.send(DestinationKind.channel, "C0TEST", Message(title="t", text="queued"))
        ctx.state("test.changed")
        ctx.session.flush()  # written, as a step's changes are by the time it finds a problem
        if stop is not None:
            raise stop
        return Outcome()
    return step


def outbox_rows(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(OutboxMessage)).one()


def test_a_refused_step_is_undone_and_recorded_in_one_transaction(core: Core) -> None:
    before = outbox_rows(core.engine)
    with transactions(core.engine) as begun:
        outcome = core.act(actor=OFFICER, action="test.step", handler=queue_then(
            Refused("Not yours.", code=RefusalCode.not_owner)))
    assert not outcome.ok and outcome.refusal == "Not yours."
    assert outcome.refusal_code is RefusalCode.not_owner
    assert outbox_rows(core.engine) == before  # the queued message went with the step
    assert not entries(core, action="message.queued")
    assert not entries(core, action="test.changed")
    assert [e.kind for e in entries(core, action="test.step")] == ["admin", "refusal"]
    assert entries(core, kind="outbound", action="message.private")  # "Not done" to the actor
    assert len(begun) == 1


def test_invalid_input_is_undone_and_recorded_in_one_transaction(core: Core) -> None:
    before = outbox_rows(core.engine)
    with transactions(core.engine) as begun:
        outcome = core.act(actor=OFFICER, action="test.step",
                           handler=queue_then(FormErrors({"reason": "Say why."})))
    assert not outcome.ok and outcome.errors == {"reason": "Say why."}
    assert outbox_rows(core.engine) == before
    assert not entries(core, action="test.changed")
    assert [e.kind for e in entries(core, action="test.step")] == ["admin"]
    assert [e.kind for e in entries(core, action="test.step.invalid")] == ["refusal"]
    assert len(begun) == 1


def test_a_step_that_is_done_keeps_its_changes(core: Core) -> None:
    before = outbox_rows(core.engine)
    with transactions(core.engine) as begun:
        outcome = core.act(actor=OFFICER, action="test.step", handler=queue_then(None))
    assert outcome.ok
    assert outbox_rows(core.engine) == before + 1
    assert entries(core, action="test.changed") and entries(core, action="message.queued")
    assert not entries(core, kind="refusal")
    assert len(begun) == 1


def test_an_unexpected_error_writes_nothing(core: Core) -> None:
    """Not a refusal: the whole interaction, its attempt included, is rolled back."""
    before = len(entries(core))
    with pytest.raises(ZeroDivisionError):
        core.act(actor=OFFICER, action="test.step", handler=queue_then(ZeroDivisionError()))
    assert len(entries(core)) == before
