"""R3: two approvers deciding the same request at the same moment; exactly one decision lands."""

from __future__ import annotations

from functools import partial

import pytest
from sqlmodel import Session, select

from bot.core.service import Core
from bot.messages import ActionId, FormId
from storage import record
from storage.models import Approval, ApprovalStatus, CloseReason, Stage
from storage.vault import Vault
from tests.conftest import TEST_KEY, on_postgres
from tests.helpers import (
    DESIGNEE,
    FRO,
    OFFICER,
    buttons,
    case_row,
    entries,
    open_case,
    press,
    run_together,
    to_approval,
)

CASES = 10


@pytest.mark.skipif(not on_postgres(), reason="needs NOTICEBOT_TEST_DATABASE_URL (PostgreSQL)")
def test_r3_concurrent_approve_and_deny_exactly_one_decision(core: Core) -> None:
    winners: list[str] = []
    for _ in range(CASES):
        case_id = open_case(core)
        to_approval(core, case_id)
        assert press(core, OFFICER, case_id, ActionId.request_approval).ok
        offered = buttons(core, case_id)
        approve, deny = offered[ActionId.approve], offered[ActionId.deny]
        assert approve.ref is not None and approve.ref == deny.ref
        opened = core.click(actor=DESIGNEE, value=deny)  # the deny button opens its form first
        assert opened.ok and opened.form is not None
        form = opened.form
        assert form.form_id is FormId.deny

        approved, denied = run_together(
            partial(core.click, actor=FRO, value=approve),
            partial(core.submit, actor=DESIGNEE, form=FormId.deny,
                    values={"reason": "insufficient basis for use"}, case_id=form.case_id,
                    ref=form.ref),
        )

        assert approved.ok != denied.ok, (approved, denied)
        loser = denied if approved.ok else approved
        assert loser.refusal is not None and not loser.errors, loser
        with Session(core.engine) as session:
            approvals = list(session.exec(select(Approval).where(Approval.case_id == case_id)))
        assert len(approvals) == 1
        decided = approvals[0]
        case = case_row(core, case_id)
        if approved.ok:
            winners.append("approve")
            assert (decided.status, decided.decided_by) == (ApprovalStatus.approved, FRO)
            assert case.stage == Stage.documents and case.close_reason is None
        else:
            winners.append("deny")
            assert (decided.status, decided.decided_by) == (ApprovalStatus.denied, DESIGNEE)
            assert Vault((TEST_KEY,)).open(decided.reason) == "insufficient basis for use"
            assert case.stage == Stage.closed and case.close_reason == CloseReason.denied
        decisions = entries(core, case_id=case_id, action="approval.decided")
        assert len(decisions) == 1
        assert decisions[0].actor == (FRO if approved.ok else DESIGNEE)
        refusals = entries(core, case_id=case_id, kind="refusal")
        assert [r.actor for r in refusals] == [DESIGNEE if approved.ok else FRO]

    assert len(winners) == CASES
    with Session(core.engine) as session:
        result = record.verify(session, Vault((TEST_KEY,)))
    assert result.ok, result
    assert result.entries == len(entries(core))


@pytest.mark.skipif(not on_postgres(), reason="needs NOTICEBOT_TEST_DATABASE_URL (PostgreSQL)")
def test_r2_concurrent_twin_submissions_create_one_case(core: Core) -> None:
    from storage.models import Case
    from tests.helpers import SUBJECT

    values = {"notice_type": "red_notice", "intended_use": "enforcement",
              "extradition_pending": "no", **SUBJECT}
    for attempt in range(5):
        key = f"view-twin-{attempt}"
        outcomes = run_together(*[partial(core.submit, actor=OFFICER, form=FormId.open_case,
                                  values=values, submission_key=key) for _ in range(3)])
        assert all(o.ok for o in outcomes)
        assert len({o.case_id for o in outcomes}) == 1
    with Session(core.engine) as session:
        assert len(session.exec(select(Case)).all()) == 5
