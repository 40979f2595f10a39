"""Obligations whose own tests were missing from the table in docs/obligations.md: each test
walks the rule through the core the way a surface does, and fails if the rule is not kept."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.core.service import Core
from bot.messages import ActionId, ActionValue, Message
from storage.models import OutboxMessage, RequestKind, Stage, UsncbRequest
from tests.helpers import (
    DESIGNEE,
    MANAGER,
    OFFICER,
    OFFICER_LAPSED,
    OPLA,
    TODAY,
    case_row,
    entries,
    open_case,
    press,
    to_approval,
    to_use_authorization,
)

SENT = {"sent_on": TODAY, "method": "USNCB e-mail"}


def requests(core: Core, case_id: str, kind: RequestKind) -> list[UsncbRequest]:
    with Session(core.engine) as session:
        return list(session.exec(select(UsncbRequest).where(
            UsncbRequest.case_id == case_id, UsncbRequest.kind == kind.value)))


def test_o8_documents_request_waits_for_the_aors_fro_or_designee(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    # The approval DM asks the approver to approve the documentation request itself.
    with Session(core.engine) as session:
        dms = [Message.from_dict(r.payload) for r in session.exec(
            select(OutboxMessage).where(OutboxMessage.case_id == case_id,
                                        OutboxMessage.destination_kind == "dm"))]
    assert any("underlying documentation" in m.text for m in dms)
    for outsider in (MANAGER, OPLA, OFFICER_LAPSED):
        refused = press(core, outsider, case_id, ActionId.approve)
        assert not refused.ok, outsider
    early = core.click(actor=OFFICER, value=ActionValue(ActionId.documents_sent, case_id))
    assert early.form is None and early.refusal
    assert requests(core, case_id, RequestKind.documents) == []
    assert press(core, DESIGNEE, case_id, ActionId.approve).ok
    assert press(core, OFFICER, case_id, ActionId.documents_sent,
                 {"documents": ["warrant"], **SENT}).ok
    assert len(requests(core, case_id, RequestKind.documents)) == 1


def test_o9_use_authorization_goes_through_the_usncb(core: Core) -> None:
    case_id = open_case(core)
    to_use_authorization(core, case_id)
    # No answer can be recorded before a request to the USNCB is.
    answer = press(core, OFFICER, case_id, ActionId.use_auth_answer,
                   {"answer": "granted", "answered_on": TODAY})
    assert not answer.ok
    assert case_row(core, case_id).stage == Stage.use_authorization
    form = core.click(actor=OFFICER, value=ActionValue(ActionId.use_auth_sent, case_id)).form
    assert form is not None and "USNCB" in form.intro
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "immigration", **SENT}).ok
    sent = requests(core, case_id, RequestKind.use_authorization)
    assert len(sent) == 1 and sent[0].external_id
    assert entries(core, case_id=case_id, action="usncb.request_sent")


def test_o14_no_step_past_use_authorization_without_contacting_the_usncb(core: Core) -> None:
    case_id = open_case(core)
    to_use_authorization(core, case_id)
    for action, values in (
        (ActionId.use_auth_no_response, None),
        (ActionId.disclosure, {"provided_on": TODAY, "provided": "warrant copy",
                               "respond_by": "2026-12-14"}),
        (ActionId.representations, {"not_a_warrant": "yes", "i213": "yes"}),
    ):
        outcome = press(core, OFFICER, case_id, action, values)
        assert not outcome.ok, action
    assert case_row(core, case_id).stage == Stage.use_authorization
    assert len(entries(core, case_id=case_id, kind="refusal")) >= 3


def test_o23_nothing_that_uses_the_notice_happens_before_approval(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    for action, values in (
        (ActionId.documents_sent, {"documents": ["warrant"], **SENT}),
        (ActionId.use_auth_sent, {"purpose": "enforcement", **SENT}),
        (ActionId.disclosure, {"provided_on": TODAY, "provided": "warrant copy",
                               "respond_by": "2026-12-14"}),
        (ActionId.disclosure_exception, {"justification": "an ongoing operation would be "
                                         "exposed to the person"}),
        (ActionId.representations, {"not_a_warrant": "yes", "i213": "yes"}),
    ):
        outcome = press(core, OFFICER, case_id, action, values)
        assert not outcome.ok, action
    case = case_row(core, case_id)
    assert case.stage == Stage.approval
    assert requests(core, case_id, RequestKind.documents) == []
    assert requests(core, case_id, RequestKind.use_authorization) == []
