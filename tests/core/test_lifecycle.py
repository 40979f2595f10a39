"""Holes found by adversarial walks (denials, rounds of doubt, request texts, intended use, the
person's response window) and the end of a case's life, proved through the core's verbs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot.clock import ManualClock
from bot.core.details import open_case_details
from bot.core.service import Core
from bot.messages import ActionId, DestinationKind, Message
from bot.records.disposition import eligible
from bot.schedule.digest import build_digest
from bot.schedule.runner import sweep_once
from bot.usncb.requests import request_text
from storage.models import (
    Approval,
    ApprovalKind,
    Case,
    CloseReason,
    OutboxMessage,
    RequestKind,
    Stage,
    UsncbRequest,
)
from tests.helpers import (
    CLEAN_REVIEW,
    DESIGNEE,
    FRO,
    MANAGER,
    OFFICER,
    OPLA,
    TODAY,
    buttons,
    case_row,
    entries,
    open_case,
    press,
    to_approval,
    to_review,
    to_use_authorization,
)

RESPOND_BY = "2026-12-14"
CASE_FILE_SCHEDULE = """
[[schedule]]
record_type = "case_file"
item = "ICE-1015-CASE"
authority = "DAA-0567-2023-0001"
retain_years = 10
trigger = "case_closed"
"""
# Justifications need substance (O7): reasons the tests type are real sentences.
USE_CHANGE_REASON = "Removal proceedings were opened against the person"
DENIAL_REASON = "No basis at all for relying on this notice"
SAME_AS_BEFORE = "The same reasons as in the first round"
NO_CHANGE = "Nothing changes about the intended use"
STEPS_DONE: tuple[tuple[str, list[str]], ...] = (
    ("confer", ["usncb", "state"]), ("research", []), ("context", []))


@pytest.fixture
def records_core(core: Core, tmp_path: Path) -> Core:
    path = tmp_path / "retention.toml"
    path.write_text(CASE_FILE_SCHEDULE, encoding="utf-8")
    core.settings = core.settings.model_copy(update={"retention_file": str(path)})
    return core


def outbox(core: Core, case_id: str | None = None) -> list[OutboxMessage]:
    with Session(core.engine) as session:
        statement = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if case_id:
            statement = statement.where(OutboxMessage.case_id == case_id)
        return list(session.exec(statement))


def latest(core: Core, key: str) -> Message:
    found = [Message.from_dict(r.payload) for r in outbox(core) if r.message_key == key]
    assert found, key
    return found[-1]


def dms_to(core: Core, user: str, case_id: str) -> list[Message]:
    return [Message.from_dict(r.payload) for r in outbox(core, case_id)
            if r.destination_kind == DestinationKind.dm and r.destination == user]


def channel_and_thread_text(core: Core, case_id: str) -> str:
    return "\n".join(Message.from_dict(r.payload).all_text() for r in outbox(core, case_id)
                     if r.destination_kind in (DestinationKind.channel, DestinationKind.thread))


def requested(core: Core, case_id: str) -> None:
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok


# --- item 9: denials reach the officer; return for changes ------------------------------------


def test_o2_o12_denial_reason_and_decider_reach_the_officer(core: Core) -> None:
    case_id = open_case(core)
    requested(core, case_id)
    reason = "The charges rest on a private tax dispute"
    assert press(core, DESIGNEE, case_id, ActionId.deny, {"reason": reason}).ok
    assert case_row(core, case_id).close_reason == CloseReason.denied
    step = latest(core, f"{case_id}:approval")
    assert f"<@{DESIGNEE}>" in step.text and "Denied" in step.title + step.text
    # The reason is the approver's free text: the officer gets it privately, the channel not.
    assert reason not in channel_and_thread_text(core, case_id)
    to_officer = dms_to(core, OFFICER, case_id)
    assert to_officer and reason in to_officer[-1].text and f"<@{DESIGNEE}>" in to_officer[-1].text
    shown = core.command(actor=OFFICER, text=f"/notice show {case_id}").private[0].all_text()
    assert f"denied by <@{DESIGNEE}>" in shown and reason in shown


def test_o2_o22_approver_returns_the_case_for_changes(core: Core) -> None:
    case_id = open_case(core)
    requested(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.return_for_changes,
                 {"reason": "look at the fraud charge again"}).refusal
    assert entries(core, case_id=case_id, kind="refusal", action="click.return_for_changes")
    assert "reason" in press(core, FRO, case_id, ActionId.return_for_changes,
                             {"reason": ""}).errors
    reason = "Record the State Department's view on the fraud charge"
    assert press(core, FRO, case_id, ActionId.return_for_changes, {"reason": reason}).ok
    case = case_row(core, case_id)
    assert case.stage == Stage.review and case.close_reason is None
    assert reason in dms_to(core, OFFICER, case_id)[-1].text
    assert entries(core, case_id=case_id, action="approval.returned")
    # The stale decision buttons decide nothing now.
    assert press(core, FRO, case_id, ActionId.approve).refusal
    # The officer reviews again and asks again; the new request is decided normally.
    assert ActionId.review in buttons(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.review, CLEAN_REVIEW).ok
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    assert press(core, FRO, case_id, ActionId.approve).ok
    assert case_row(core, case_id).stage == Stage.documents
    shown = core.command(actor=OFFICER, text=f"/notice show {case_id}").private[0].all_text()
    assert f"returned for changes by <@{FRO}>" in shown and reason in shown


def test_o2_deny_stays_final(core: Core) -> None:
    case_id = open_case(core)
    requested(core, case_id)
    assert press(core, FRO, case_id, ActionId.deny, {"reason": DENIAL_REASON}).ok
    assert press(core, FRO, case_id, ActionId.return_for_changes, {"reason": "undo"}).refusal
    assert case_row(core, case_id).stage == Stage.closed


# --- item 2: each round of doubt needs its own steps -----------------------------------------


def _doubt_round(core: Core, case_id: str) -> None:
    for kind, partners in STEPS_DONE:
        assert press(core, OFFICER, case_id, ActionId.doubt_step,
                     {"kind": kind, "partners": partners, "note": "done this round"}).ok


def test_o29_each_round_of_doubt_needs_its_own_confer_research_context(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.review, {
        **CLEAN_REVIEW, "indicators": ["targeted_person"], "outcome": "doubt"}).ok
    _doubt_round(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.doubt_resolve,
                 {"resolution": "resolved",
                  "justification": "State found nothing that suggests misuse"}).ok
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    assert press(core, FRO, case_id, ActionId.approve).ok
    assert press(core, OFFICER, case_id, ActionId.documents_sent,
                 {"documents": ["warrant"], "sent_on": TODAY, "method": "e-mail"}).ok
    assert press(core, OFFICER, case_id, ActionId.documents_answer,
                 {"answer": "received", "received": ["warrant"], "answered_on": TODAY}).ok
    assert press(core, OFFICER, case_id, ActionId.documents_review,
                 {"indications": "yes", "better_evidence": "no",
                  "necessity": "the removal hearing is already set for next week"}).ok
    assert case_row(core, case_id).stage == Stage.doubt
    prompt = latest(core, f"{case_id}:doubt")
    assert "Still to do: confer, research, context" in prompt.text
    early = press(core, OFFICER, case_id, ActionId.doubt_resolve,
                  {"resolution": "resolved", "justification": SAME_AS_BEFORE})
    assert "§5.2 minimum" in early.errors["resolution"]
    assert entries(core, case_id=case_id, kind="refusal", action="form.doubt_resolve.invalid")
    _doubt_round(core, case_id)
    assert "All three done" in latest(core, f"{case_id}:doubt").text
    assert press(core, OFFICER, case_id, ActionId.doubt_resolve,
                 {"resolution": "resolved",
                  "justification": "The documents explain the new indications"}).ok
    # A new round of approval too: the earlier approval covered the earlier facts.
    assert case_row(core, case_id).stage == Stage.approval
    assert ActionId.request_approval in buttons(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.documents_sent,
                 {"documents": ["warrant"], "sent_on": TODAY, "method": "e-mail"}).refusal


# --- item 6: generated texts state only recorded facts ---------------------------------------


def test_o4_o20_request_text_says_doj_was_consulted_only_when_recorded(core: Core) -> None:
    case_id = open_case(core, extradition_pending="yes", intended_use="enforcement")
    to_use_authorization(core, case_id)
    form = core.click(actor=OFFICER, value=buttons(core, case_id)[ActionId.use_auth_sent]).form
    assert form is not None
    assert "DOJ has been consulted" not in form.preformatted
    assert "extradition request is pending" in form.preformatted
    assert "to inform an enforcement action" in form.preformatted
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent, {
        "purpose": "enforcement", "sent_on": TODAY, "method": "e-mail",
        "doj_coordination": "OIA consulted on 2026-11-20 about the pending request"}).ok
    with Session(core.engine) as session:
        case = session.get(Case, case_id)
        request = session.exec(select(UsncbRequest).where(
            UsncbRequest.kind == RequestKind.use_authorization)).one()
        assert case is not None
        reference = open_case_details(core_vault(core), case).notice_reference
        text = request_text(case, RequestKind.use_authorization, request.details,
                            notice_reference=reference)
        unrecorded = request_text(case, RequestKind.use_authorization,
                                  {"purpose": "enforcement"}, notice_reference=reference)
    assert "DOJ has been consulted" in text
    assert "DOJ has been consulted" not in unrecorded
    assert "to inform an enforcement action" in text and "immigration" not in text


def core_vault(core: Core) -> Any:
    from storage.vault import Vault

    return Vault(core.settings.vault_keys)


# --- item 1: intended use governs the use authorization ---------------------------------------


def test_o25_o19_request_purpose_must_cover_the_intended_use(core: Core) -> None:
    case_id = open_case(core)  # immigration proceedings
    to_use_authorization(core, case_id)
    diverging = press(core, OFFICER, case_id, ActionId.use_auth_sent,
                      {"purpose": "enforcement", "sent_on": TODAY, "method": "x"})
    assert "intended use" in diverging.errors["purpose"]
    assert entries(core, case_id=case_id, kind="refusal", action="form.use_auth_sent.invalid")
    with Session(core.engine) as session:
        assert session.exec(select(UsncbRequest).where(
            UsncbRequest.kind == RequestKind.use_authorization)).first() is None
    assert case_row(core, case_id).intended_use == "immigration"
    # The covering request tells OPLA, which facilitates it (§4.4(1)).
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "immigration", "sent_on": TODAY, "method": "x"}).ok
    assert dms_to(core, OPLA, case_id)
    no_grant = press(core, OFFICER, case_id, ActionId.use_auth_answer,
                     {"answer": "no_response_proceed", "answered_on": TODAY})
    assert "§5.1(5)" in no_grant.errors["answer"]


def test_o25_a_change_of_intended_use_is_its_own_approved_step(core: Core) -> None:
    case_id = open_case(core)  # immigration proceedings
    to_use_authorization(core, case_id)
    assert press(core, FRO, case_id, ActionId.change_use,
                 {"intended_use": "enforcement", "reason": "x"}).refusal  # officer's step
    same = press(core, OFFICER, case_id, ActionId.change_use,
                 {"intended_use": "immigration", "reason": NO_CHANGE})
    assert "intended_use" in same.errors
    assert press(core, OFFICER, case_id, ActionId.change_use,
                 {"intended_use": "enforcement",
                  "reason": "Removal case closed; criminal referral instead"}).ok
    assert case_row(core, case_id).intended_use == "immigration"  # not until approved
    with Session(core.engine) as session:
        change = session.exec(select(Approval).where(
            Approval.kind == ApprovalKind.use_change)).one()
    assert change.routed_to == FRO and change.requested_use == "enforcement"
    assert press(core, OFFICER, case_id, ActionId.approve_use_change).refusal
    assert press(core, FRO, case_id, ActionId.approve_use_change).ok
    assert case_row(core, case_id).intended_use == "enforcement"
    assert entries(core, case_id=case_id, action="case.intended_use_changed")
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "enforcement", "sent_on": TODAY, "method": "x"}).ok
    assert press(core, OFFICER, case_id, ActionId.use_auth_answer,
                 {"answer": "no_response_proceed", "answered_on": TODAY}).ok
    assert case_row(core, case_id).stage == Stage.disclosure


def test_o25_changing_to_immigration_after_authorization_needs_a_new_grant(
    core: Core,
) -> None:
    case_id = open_case(core, intended_use="enforcement")
    to_use_authorization(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "enforcement", "sent_on": TODAY, "method": "x"}).ok
    assert press(core, OFFICER, case_id, ActionId.use_auth_answer,
                 {"answer": "no_response_proceed", "answered_on": TODAY}).ok
    assert case_row(core, case_id).stage == Stage.disclosure
    assert press(core, OFFICER, case_id, ActionId.change_use,
                 {"intended_use": "immigration", "reason": USE_CHANGE_REASON}).ok
    assert press(core, DESIGNEE, case_id, ActionId.refuse_use_change,
                 {"reason": "Not yet: the grant does not cover it"}).ok
    assert case_row(core, case_id).intended_use == "enforcement"
    assert press(core, OFFICER, case_id, ActionId.change_use,
                 {"intended_use": "immigration", "reason": USE_CHANGE_REASON}).ok
    assert press(core, FRO, case_id, ActionId.approve_use_change).ok
    case = case_row(core, case_id)
    assert case.intended_use == "immigration" and case.stage == Stage.use_authorization
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "immigration", "sent_on": TODAY, "method": "x"}).ok
    assert dms_to(core, OPLA, case_id)
    assert "§5.1(5)" in press(core, OFFICER, case_id, ActionId.use_auth_answer,
                              {"answer": "no_response_proceed",
                               "answered_on": TODAY}).errors["answer"]
    assert press(core, OFFICER, case_id, ActionId.use_auth_answer,
                 {"answer": "granted", "answered_on": TODAY}).ok
    assert case_row(core, case_id).stage == Stage.disclosure


def test_o25_an_answer_for_an_earlier_intended_use_authorizes_nothing(core: Core) -> None:
    case_id = open_case(core, intended_use="enforcement")
    to_use_authorization(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "enforcement", "sent_on": TODAY, "method": "x"}).ok
    old_request = buttons(core, case_id)[ActionId.use_auth_answer]
    assert press(core, OFFICER, case_id, ActionId.change_use,
                 {"intended_use": "immigration", "reason": USE_CHANGE_REASON}).ok
    assert press(core, FRO, case_id, ActionId.approve_use_change).ok
    assert ActionId.use_auth_sent in buttons(core, case_id)  # a new request is needed
    stale = core.click(actor=OFFICER, value=old_request)
    assert stale.form is not None
    assert core.submit(actor=OFFICER, form=stale.form.form_id, case_id=case_id,
                       ref=stale.form.ref,
                       values={"answer": "granted", "answered_on": TODAY}).ok
    assert entries(core, case_id=case_id, action="usncb.answer_superseded")
    assert case_row(core, case_id).stage == Stage.use_authorization
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "immigration", "sent_on": TODAY, "method": "x"}).ok
    assert dms_to(core, OPLA, case_id)


# --- item 7: the person's window to respond ----------------------------------------------------


def to_disclosure(core: Core, **open_values: Any) -> str:
    case_id = open_case(core, **open_values)
    to_use_authorization(core, case_id)
    use = case_row(core, case_id).intended_use
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": use, "sent_on": TODAY, "method": "x"}).ok
    assert press(core, OFFICER, case_id, ActionId.use_auth_answer,
                 {"answer": "granted", "answered_on": TODAY}).ok
    return case_id


def disclosed(core: Core, **open_values: Any) -> str:
    case_id = to_disclosure(core, **open_values)
    assert press(core, OFFICER, case_id, ActionId.disclosure,
                 {"provided_on": TODAY, "provided": "warrant copy",
                  "respond_by": RESPOND_BY}).ok
    return case_id


ACK = {"not_a_warrant": "yes", "i213": "yes"}


def test_o17_o26_case_waits_until_the_window_closes(core: Core, clock: ManualClock) -> None:
    case_id = disclosed(core)
    assert case_row(core, case_id).stage == Stage.awaiting_response
    assert press(core, OFFICER, case_id, ActionId.representations, ACK).refusal
    early = press(core, OFFICER, case_id, ActionId.person_response, {"response": "none"})
    assert RESPOND_BY in early.errors["response"]
    assert entries(core, case_id=case_id, kind="refusal", action="form.person_response.invalid")
    # The window closes: the officer is reminded in the thread.
    clock.set(datetime(2026, 12, 15, 15, 0, tzinfo=UTC))
    sweep_once(core)
    reminders = [Message.from_dict(r.payload) for r in outbox(core, case_id)
                 if r.destination_kind == DestinationKind.thread and r.message_key is None]
    assert any("window" in m.title.lower() and f"<@{OFFICER}>" in m.text for m in reminders)
    sweep_once(core)
    assert len([m for m in [Message.from_dict(r.payload) for r in outbox(core, case_id)]
                if "window" in m.title.lower()]) == 1  # once
    assert press(core, OFFICER, case_id, ActionId.person_response, {"response": "none"}).ok
    assert case_row(core, case_id).stage == Stage.representations
    assert press(core, OFFICER, case_id, ActionId.representations, ACK).ok
    assert case_row(core, case_id).stage == Stage.ready


def test_o17_o26_a_contest_needs_a_note_and_indications_send_it_back(core: Core) -> None:
    case_id = disclosed(core)
    missing = press(core, OFFICER, case_id, ActionId.person_response,
                    {"response": "contested", "indications": "no"})
    assert "note" in missing.errors
    assert press(core, OFFICER, case_id, ActionId.person_response, {
        "response": "contested", "indications": "yes",
        "note": "Counsel filed proof of asylum granted in Spain"}).ok
    case = case_row(core, case_id)
    assert case.stage == Stage.review and case.close_reason is None
    assert ActionId.review in buttons(core, case_id)

    other = disclosed(core)
    assert press(core, OFFICER, other, ActionId.person_response, {
        "response": "contested", "indications": "no",
        "note": "Disputes identity; fingerprints match"}).ok
    assert case_row(core, other).stage == Stage.representations


def test_o17_footnote_2_exception_goes_straight_to_representations(core: Core) -> None:
    case_id = to_disclosure(core)
    assert press(core, OFFICER, case_id, ActionId.disclosure_exception,
                 {"justification": "ongoing operation against associates"}).ok
    assert press(core, FRO, case_id, ActionId.sign_off_exception).ok
    assert case_row(core, case_id).stage == Stage.representations


# --- item 8: the end of a case -----------------------------------------------------------------


def ready(core: Core, clock: ManualClock, **open_values: Any) -> str:
    case_id = disclosed(core, **open_values)
    assert press(core, OFFICER, case_id, ActionId.person_response,
                 {"response": "not_contested"}).ok
    assert press(core, OFFICER, case_id, ActionId.representations, ACK).ok
    assert case_row(core, case_id).stage == Stage.ready
    return case_id


def test_o32_officer_records_the_use_and_the_case_closes(
    core: Core, clock: ManualClock
) -> None:
    case_id = ready(core, clock, intended_use="enforcement")
    assert "Record how the notice was used" in channel_and_thread_text(core, case_id)
    assert press(core, FRO, case_id, ActionId.record_outcome,
                 {"outcome": "not_used", "used_on": TODAY}).refusal
    beyond = press(core, OFFICER, case_id, ActionId.record_outcome,
                   {"outcome": "immigration_proceedings", "used_on": TODAY})
    assert "§5.1(5)" in beyond.errors["outcome"]
    assert entries(core, case_id=case_id, kind="refusal", action="form.record_outcome.invalid")
    assert entries(core, case_id=case_id, kind="refusal", actor=FRO,
                   action="click.record_outcome")
    assert press(core, OFFICER, case_id, ActionId.record_outcome,
                 {"outcome": "enforcement_action", "used_on": TODAY}).ok
    case = case_row(core, case_id)
    assert case.stage == Stage.closed and case.close_reason == CloseReason.completed
    assert case.use_outcome == "enforcement_action" and case.used_on == date(2026, 11, 23)
    assert entries(core, case_id=case_id, action="case.use_recorded")
    listed = core.command(actor=OFFICER, text="/notice list").private[0].text
    assert case_id not in listed


def test_o32_retention_counts_from_closure(records_core: Core, clock: ManualClock) -> None:
    core = records_core
    case_id = ready(core, clock, intended_use="enforcement")
    clock.advance(timedelta(days=40))
    assert press(core, OFFICER, case_id, ActionId.record_outcome,
                 {"outcome": "not_used", "used_on": clock.now().date().isoformat()}).ok
    with Session(core.engine) as session:
        closed_at = session.get(Case, case_id).closed_at  # type: ignore[union-attr]
        assert closed_at is not None
    assert closed_at.date() == date(2027, 1, 2)  # 40 days after it became ready
    clock.set(datetime(2037, 1, 1, 15, 0, tzinfo=UTC))  # ten years after opening: not yet
    assert not [e for e in eligible_now(core) if e.record_ref == case_id]
    clock.set(datetime(2037, 1, 2, 15, 0, tzinfo=UTC))  # ten years after closure
    assert [e for e in eligible_now(core) if e.record_ref == case_id]


def eligible_now(core: Core) -> list[Any]:
    from bot.core.context import unit_of_work
    from bot.records.retention import load_schedule

    with unit_of_work(core.engine, clock=core.clock, settings=core.settings,
                      actor="U0REC1") as ctx:
        return list(eligible(ctx, load_schedule(core.settings.retention_file)))


def test_o32_ready_case_without_outcome_is_reminded_then_escalated_to_the_fro(
    core: Core, clock: ManualClock
) -> None:
    case_id = ready(core, clock)
    days = core.settings.outcome_remind_days
    clock.advance(timedelta(days=days - 1))
    sweep_once(core)
    assert not any("how the notice was used" in m.title for m in thread_notes(core, case_id))
    end = clock.now() + timedelta(days=2)
    while clock.now() < end:  # in working hours of the officer's time zone
        clock.advance(timedelta(hours=3))
        sweep_once(core)
    nudges = [m for m in thread_notes(core, case_id) if "how the notice was used" in m.title]
    assert len(nudges) == 1 and f"<@{OFFICER}>" in nudges[0].text
    assert not [m for m in dms_to(core, FRO, case_id) if "outcome" in m.title.lower()]
    end = clock.now() + timedelta(days=days * core.settings.outcome_escalate_after + 4)
    while clock.now() < end:
        clock.advance(timedelta(hours=3))
        sweep_once(core)
    nudges = [m for m in thread_notes(core, case_id) if "how the notice was used" in m.title]
    assert len(nudges) == core.settings.outcome_escalate_after + 1
    escalations = [m for m in dms_to(core, FRO, case_id) if "outcome" in m.title.lower()]
    assert len(escalations) == 1
    assert ActionId.close_case in {a.value.action for a in escalations[-1].actions}
    # The officer cannot close it this way; the FRO can, with a reason.
    assert press(core, OFFICER, case_id, ActionId.close_case,
                 {"outcome": "not_used", "reason": "x"}).refusal
    assert entries(core, case_id=case_id, kind="refusal", actor=OFFICER,
                   action="click.close_case")
    assert press(core, FRO, case_id, ActionId.close_case,
                 {"outcome": "not_used", "reason": "Officer reassigned; notice not used"}).ok
    case = case_row(core, case_id)
    assert case.stage == Stage.closed and case.close_reason == CloseReason.completed
    assert case.use_outcome == "not_used"


def thread_notes(core: Core, case_id: str) -> list[Message]:
    return [Message.from_dict(r.payload) for r in outbox(core, case_id)
            if r.destination_kind == DestinationKind.thread and r.message_key is None]


def test_o32_closed_cases_leave_the_digest_open_lists(core: Core, clock: ManualClock) -> None:
    case_id = ready(core, clock, intended_use="enforcement")
    from bot.core.context import unit_of_work

    def open_by_stage() -> str:
        with unit_of_work(core.engine, clock=core.clock, settings=core.settings,
                          actor=MANAGER) as ctx:
            return dict(build_digest(ctx, MANAGER).fields)["Open by stage"]

    assert "Ready for use" in open_by_stage()
    assert press(core, OFFICER, case_id, ActionId.record_outcome,
                 {"outcome": "enforcement_action", "used_on": TODAY}).ok
    assert open_by_stage() == "none"
