"""Walk cases through the core the way a surface would: by clicking the buttons it offers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from click.testing import CliRunner, Result
from sqlmodel import Session, col, select

from bot.core.service import Core
from bot.messages import ActionId, ActionValue, FormId, Message, Outcome
from handlers.cli import main
from storage.models import Case, OutboxMessage, RecordEntry

T = TypeVar("T")

OFFICER, OFFICER_LAPSED, FRO, DESIGNEE, MANAGER, OPLA, RECORDS = (
    "U0OFF1", "U0OFF2", "U0SUP1", "U0SUP2", "U0MGR1", "U0OPLA1", "U0REC1")

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


TODAY = "2026-11-23"
CLEAN_REVIEW = {
    "sources": ["interpol_guidance", "law_enforcement_systems", "usg_reports",
                "public_information"],
    "outcome": "no_indications",
}


def to_review(core: Core, case_id: str, actor: str = OFFICER) -> None:
    assert press(core, actor, case_id, ActionId.validity_sent,
                 {"sent_on": TODAY, "method": "USNCB e-mail"}).ok
    assert press(core, actor, case_id, ActionId.validity_answer,
                 {"status": "active", "answered_on": TODAY}).ok


def to_approval(core: Core, case_id: str, actor: str = OFFICER) -> None:
    to_review(core, case_id, actor)
    assert press(core, actor, case_id, ActionId.review, CLEAN_REVIEW).ok


def to_documents(core: Core, case_id: str, actor: str = OFFICER, approver: str = FRO) -> None:
    to_approval(core, case_id, actor)
    assert press(core, actor, case_id, ActionId.request_approval).ok
    assert press(core, approver, case_id, ActionId.approve).ok


def to_use_authorization(core: Core, case_id: str) -> None:
    to_documents(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.documents_sent,
                 {"documents": ["warrant", "charging"], "sent_on": TODAY,
                  "method": "USNCB e-mail"}).ok
    assert press(core, OFFICER, case_id, ActionId.documents_answer,
                 {"answer": "received", "received": ["warrant"], "answered_on": TODAY}).ok
    assert press(core, OFFICER, case_id, ActionId.documents_review,
                 {"indications": "no", "better_evidence": "yes"}).ok


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
