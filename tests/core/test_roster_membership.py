"""Every step re-checks that its actor is an active roster member with the role the step needs,
and current training where the step leads to use (§5.3, §4.3; docs/obligations.md). A removed
officer cannot finish their case, a removed delegate cannot act for their FRO, a delegation ends
with its delegate or its FRO, and a case whose officer left is reassigned by the AOR's FRO or
designee to another trained officer (until then the managers' digest flags it)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session, select

from bot.app import load_roster_text, sample_roster_text
from bot.clock import ManualClock
from bot.core import access
from bot.core.service import Core
from bot.messages import ActionId, ActionValue, Message
from storage.models import Delegation, OutboxMessage, Reminder
from tests.helpers import (
    CLEAN_REVIEW,
    DESIGNEE,
    FRO,
    MANAGER,
    OFFICER,
    OFFICER_LAPSED,
    OPLA,
    TODAY,
    case_row,
    entries,
    open_case,
    press,
    to_documents,
    to_review,
    to_use_authorization,
)

NEW_OFFICER = "U0OFF3"
EXTRA_OFFICER = """
[[person]]
user = "U0OFF3"
name = "Nora Newcomer"
email = "nora.newcomer@example.gov"
roles = ["officer"]
aor = "HOU"
training_completed = RECENT_DATE
timezone = "America/Chicago"
"""


def roster(core: Core, *, without: tuple[str, ...] = (), extra: str = EXTRA_OFFICER) -> None:
    """Import the sample roster (plus a third officer) without the people named."""
    today = core.clock.now().date()
    text = sample_roster_text(today) + extra.replace(
        "RECENT_DATE", (today - timedelta(days=30)).isoformat())
    blocks = text.split("[[person]]")
    kept = [blocks[0]] + [b for b in blocks[1:]
                          if not any(f'user = "{user}"' in b for user in without)]
    text = "[[person]]".join(kept)
    for user in without:  # out of the approver chain and the managers too
        text = re.sub(rf'"{user}",?\s*', "", text)
    load_roster_text(core, text, actor="admin", source="test")


def refused_as(outcome: object, code: str) -> bool:
    return getattr(outcome, "refusal_code", None) == code


# --- a removed officer --------------------------------------------------------------------


def test_o10_officer_taken_off_the_roster_cannot_record_documents(core: Core) -> None:
    case_id = open_case(core)
    to_documents(core, case_id)
    roster(core, without=(OFFICER,))
    before = len(entries(core, actor=OFFICER, kind="refusal"))
    outcome = press(core, OFFICER, case_id, ActionId.documents_sent,
                    {"documents": ["warrant"], "sent_on": TODAY, "method": "USNCB e-mail"})
    assert refused_as(outcome, "not_on_roster"), outcome
    assert len(entries(core, actor=OFFICER, kind="refusal")) > before  # recorded


def test_o10_removed_officer_cannot_finish_use_authorization_or_disclosure(core: Core) -> None:
    case_id = open_case(core)
    to_use_authorization(core, case_id)
    roster(core, without=(OFFICER,))
    for action, values in (
        (ActionId.use_auth_sent, {"purpose": "enforcement", "sent_on": TODAY,
                                  "method": "USNCB e-mail"}),
        (ActionId.disclosure, {"provided_on": TODAY, "provided": "warrant copy",
                               "respond_by": "2026-12-14"}),
        (ActionId.representations, {"not_a_warrant": "yes", "i213": "yes"}),
    ):
        outcome = press(core, OFFICER, case_id, action, values)
        assert not outcome.ok, action
        assert outcome.refusal_code in ("not_on_roster", "stage"), outcome
    assert case_row(core, case_id).stage == "use_authorization"


def test_o11_removed_officer_cannot_submit_the_preliminary_review(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    roster(core, without=(OFFICER,))
    outcome = press(core, OFFICER, case_id, ActionId.review, CLEAN_REVIEW)
    assert refused_as(outcome, "not_on_roster"), outcome
    assert case_row(core, case_id).stage == "review"
    assert any(e.case_id == case_id for e in entries(core, actor=OFFICER, kind="refusal"))


def test_o10_officer_who_lost_the_officer_role_cannot_go_on(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    today = core.clock.now().date()
    text = sample_roster_text(today).replace(
        'user = "U0OFF1"\nname = "Olivia Officer"\nemail = "olivia.officer@example.gov"\n'
        'roles = ["officer"]', 'user = "U0OFF1"\nname = "Olivia Officer"\n'
        'email = "olivia.officer@example.gov"\nroles = ["opla"]')
    load_roster_text(core, text, actor="admin", source="test")
    outcome = press(core, OFFICER, case_id, ActionId.review, CLEAN_REVIEW)
    assert refused_as(outcome, "role"), outcome


def test_o31_training_lapsed_mid_case_stops_the_steps_that_lead_to_use(
    core: Core, clock: ManualClock
) -> None:
    case_id = open_case(core)
    to_documents(core, case_id)
    clock.advance(timedelta(days=340))  # the sample's training was 30 days before the start
    outcome = press(core, OFFICER, case_id, ActionId.documents_sent,
                    {"documents": ["warrant"], "sent_on": clock.now().date().isoformat(),
                     "method": "USNCB e-mail"})
    assert refused_as(outcome, "training"), outcome
    assert "§5.3" in (outcome.refusal or "")


# --- delegations -----------------------------------------------------------------------------


def delegate_to(core: Core, delegator: str, delegate: str) -> None:
    until = (core.clock.now().date() + timedelta(days=30)).isoformat()
    assert core.command(actor=delegator, text=f"/notice delegate <@{delegate}> until {until}").ok


def may_approve(core: Core, case_id: str, user: str) -> bool:
    with Session(core.engine) as session:
        case = session.get(type(case_row(core, case_id)), case_id)
        assert case is not None
        return access.may_approve(session, case, user, today=core.clock.now().date())


def test_o12_removed_delegate_cannot_withdraw_or_report_inactive(core: Core) -> None:
    case_id = open_case(core)
    delegate_to(core, FRO, OPLA)
    assert may_approve(core, case_id, OPLA)
    roster(core, without=(OPLA,))
    assert not may_approve(core, case_id, OPLA)
    withdrawn = press(core, OPLA, case_id, ActionId.withdraw, {"reason": "no longer needed"})
    assert refused_as(withdrawn, "not_on_roster"), withdrawn
    inactive = press(core, OPLA, case_id, ActionId.report_inactive,
                     {"status": "withdrawn", "note": "USNCB e-mail of today"})
    assert refused_as(inactive, "not_on_roster"), inactive
    assert case_row(core, case_id).stage != "closed"
    assert len([e for e in entries(core, actor=OPLA, kind="refusal")
                if e.case_id == case_id]) >= 2


def test_o12_delegation_ends_when_its_fro_leaves_the_roster(core: Core) -> None:
    case_id = open_case(core)
    delegate_to(core, FRO, OPLA)
    assert may_approve(core, case_id, OPLA)
    roster(core, without=(FRO,))
    assert not may_approve(core, case_id, OPLA)
    withdrawn = press(core, OPLA, case_id, ActionId.withdraw, {"reason": "no longer needed"})
    assert not withdrawn.ok and withdrawn.refusal_code == "not_owner", withdrawn
    with Session(core.engine) as session:
        delegation = session.exec(select(Delegation)).one()
    assert delegation.until < core.clock.now().date()  # ended, and recorded
    assert entries(core, action="delegation.ended")


def test_o12_delegation_ends_when_its_delegate_leaves_the_roster(core: Core) -> None:
    delegate_to(core, FRO, OPLA)
    roster(core, without=(OPLA,))
    ended = entries(core, action="delegation.ended")
    assert ended and ended[-1].actor == "admin"
    with Session(core.engine) as session:
        assert access.active_delegations(session, "HOU", today=core.clock.now().date()) == []


# --- reassignment of a case whose officer left ---------------------------------------------


def digest_notes(core: Core) -> list[str]:
    outcome = core.command(actor=MANAGER, text="/notice digest")
    assert outcome.ok, outcome
    return list(outcome.private[0].notes)


def dms_to(core: Core, user: str) -> list[Message]:
    with Session(core.engine) as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.destination == user))
        return [Message.from_dict(r.payload) for r in rows]


def test_o12_case_of_a_departed_officer_is_flagged_then_reassigned_by_the_fro(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    roster(core)
    assert not any(case_id in note for note in digest_notes(core))
    assert not any(case_id in m.all_text() for m in dms_to(core, FRO))
    roster(core, without=(OFFICER,))
    assert any(case_id in note and "left the roster" in note for note in digest_notes(core))
    for approver in (FRO, DESIGNEE):  # told at once, not only in next Monday's digest
        assert any(case_id in m.all_text() and "/notice reassign" in m.all_text()
                   for m in dms_to(core, approver)), approver
    assert entries(core, action="case.officer_gone", case_id=case_id)
    roster(core, without=(OFFICER,))  # the same roster again: nobody is told twice
    assert len(entries(core, action="case.officer_gone", case_id=case_id)) == 1

    # Only the AOR's FRO or designee reassigns, and only to a trained officer of the AOR.
    by_officer = core.command(actor=NEW_OFFICER, text=f"/notice reassign {case_id} @{NEW_OFFICER}")
    assert refused_as(by_officer, "not_approver"), by_officer
    lapsed = core.command(actor=FRO, text=f"/notice reassign {case_id} @{OFFICER_LAPSED}")
    assert refused_as(lapsed, "training"), lapsed
    to_manager = core.command(actor=FRO, text=f"/notice reassign {case_id} @{MANAGER}")
    assert refused_as(to_manager, "role"), to_manager
    assert case_row(core, case_id).officer == OFFICER

    done = core.command(actor=DESIGNEE, text=f"/notice reassign {case_id} @{NEW_OFFICER}")
    assert done.ok, done
    assert case_row(core, case_id).officer == NEW_OFFICER
    reassigned = entries(core, action="case.reassigned", case_id=case_id)
    assert reassigned and reassigned[-1].actor == DESIGNEE
    assert any(case_id in m.all_text() for m in dms_to(core, NEW_OFFICER))  # told
    assert not any(case_id in note for note in digest_notes(core))
    # The new officer carries on with the step the case is at.
    assert press(core, NEW_OFFICER, case_id, ActionId.review, CLEAN_REVIEW).ok


def test_o12_a_case_whose_officer_is_still_there_is_not_reassigned(core: Core) -> None:
    case_id = open_case(core)
    roster(core)
    refused = core.command(actor=FRO, text=f"/notice reassign {case_id} @{NEW_OFFICER}")
    assert refused_as(refused, "officer_active"), refused
    assert case_row(core, case_id).officer == OFFICER
    assert entries(core, actor=FRO, kind="refusal")


def test_o10_removed_officer_cannot_answer_a_reminder(core: Core) -> None:
    case_id = open_case(core)
    assert press(core, OFFICER, case_id, ActionId.validity_sent,
                 {"sent_on": TODAY, "method": "USNCB e-mail"}).ok
    with Session(core.engine) as session:
        reminder = session.exec(select(Reminder).where(Reminder.case_id == case_id)).first()
    assert reminder is not None
    roster(core, without=(OFFICER,))
    snoozed = core.click(actor=OFFICER, value=ActionValue(ActionId.reminder_snooze, case_id,
                                                          reminder.id))
    assert refused_as(snoozed, "not_on_roster"), snoozed
