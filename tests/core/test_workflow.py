"""The directive's obligations, proved through the core's public verbs."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from bot.clock import ManualClock
from bot.core.service import Core
from bot.messages import ActionId, ActionValue, FormId, Message
from storage.models import (
    Approval,
    CloseReason,
    OutboxMessage,
    RiskAnswer,
    Stage,
    UsncbNoResponse,
    UsncbRequest,
)
from tests.helpers import (
    CLEAN_REVIEW,
    DESIGNEE,
    FRO,
    MANAGER,
    OFFICER,
    OFFICER_LAPSED,
    OPLA,
    SUBJECT,
    TODAY,
    buttons,
    case_row,
    entries,
    open_case,
    press,
    to_approval,
    to_documents,
    to_review,
    to_use_authorization,
)


def outbox(core: Core, case_id: str | None = None) -> list[OutboxMessage]:
    with Session(core.engine) as session:
        statement = select(OutboxMessage)
        if case_id:
            statement = statement.where(OutboxMessage.case_id == case_id)
        return list(session.exec(statement))


def test_o31_officer_without_current_training_cannot_open(core: Core) -> None:
    refused = core.command(actor=OFFICER_LAPSED, text="/notice open")
    assert not refused.ok and refused.form is None
    assert "§5.3" in (refused.refusal or "")
    submitted = core.submit(actor=OFFICER_LAPSED, form=FormId.open_case,
                            values={"notice_type": "red_notice"})
    assert not submitted.ok and submitted.case_id is None
    refusals = entries(core, actor=OFFICER_LAPSED, kind="refusal")
    assert len(refusals) == 2


def test_o31_training_expires_after_365_days(core: Core, clock: ManualClock) -> None:
    assert core.command(actor=OFFICER, text="/notice open").form is not None
    clock.advance(timedelta(days=336))  # sample training was 30 days before the start
    assert core.command(actor=OFFICER, text="/notice open").refusal


def test_o10_roster_user_without_officer_role_cannot_open(core: Core) -> None:
    assert core.command(actor=MANAGER, text="/notice open").refusal
    assert core.command(actor="U0NOBODY", text="/notice open").refusal


def test_o21_validity_first_and_inactive_notice_closes_case(core: Core) -> None:
    case_id = open_case(core)
    assert case_row(core, case_id).stage == Stage.validity
    # Nothing past validity is offered or accepted before it.
    assert set(buttons(core, case_id)) == {ActionId.validity_sent, ActionId.show_case,
                                           ActionId.report_inactive, ActionId.withdraw}
    assert press(core, OFFICER, case_id, ActionId.review, CLEAN_REVIEW).refusal
    assert press(core, OFFICER, case_id, ActionId.validity_sent,
                 {"sent_on": TODAY, "method": "e-mail"}).ok
    answer = press(core, OFFICER, case_id, ActionId.validity_answer,
                   {"status": "suspended", "answered_on": TODAY})
    assert answer.ok
    case = case_row(core, case_id)
    assert case.stage == Stage.closed and case.close_reason == CloseReason.notice_inactive
    # A closed case accepts nothing more.
    assert press(core, OFFICER, case_id, ActionId.review, CLEAN_REVIEW).refusal


def test_o21_notice_reported_inactive_at_any_step(core: Core) -> None:
    case_id = open_case(core)
    to_documents(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.report_inactive,
                 {"status": "withdrawn", "note": "USNCB call"}).ok
    assert case_row(core, case_id).close_reason == CloseReason.notice_inactive


def test_o22_approval_refused_before_preliminary_review(core: Core) -> None:
    case_id = open_case(core)
    outcome = core.click(actor=OFFICER, value=ActionValue(ActionId.request_approval, case_id))
    assert not outcome.ok and "§5.1(2)" in (outcome.refusal or "")
    assert entries(core, case_id=case_id, kind="refusal")


def test_o5_o16_review_must_cover_required_sources(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    outcome = press(core, OFFICER, case_id, ActionId.review,
                    {"sources": ["interpol_guidance"], "outcome": "no_indications"})
    assert "sources" in outcome.errors
    assert "U.S. Government reports" in outcome.errors["sources"]
    assert case_row(core, case_id).stage == Stage.review


def test_risk_indicator_rules_out_no_indications_unless_explained(core: Core) -> None:
    case_id = open_case(core, notice_type="diffusion", published_on="2015-06-01")
    to_review(core, case_id)
    refused = press(core, OFFICER, case_id, ActionId.review, CLEAN_REVIEW)
    assert "outcome" in refused.errors and "Diffusion" in refused.errors["outcome"]
    explained = press(core, OFFICER, case_id, ActionId.review, {
        **CLEAN_REVIEW, "dismissed": ["diffusion", "pre_reform"],
        "dismissal_note": "INTERPOL reviewed and republished it in 2019"})
    assert explained.ok
    with Session(core.engine) as session:
        answers = {a.indicator: a for a in session.exec(select(RiskAnswer))}
    assert answers["diffusion"].automatic and answers["pre_reform"].answer
    assert answers["diffusion"].not_applicable_note
    assert not answers["usg_employee"].answer
    assert case_row(core, case_id).stage == Stage.approval


def test_watchlist_country_is_an_indicator_never_shown_in_messages(core: Core) -> None:
    case_id = open_case(core, issuing_country="ZZ")
    to_review(core, case_id)
    assert "watch list" in press(core, OFFICER, case_id, ActionId.review,
                                 CLEAN_REVIEW).errors["outcome"]
    for row in outbox(core):
        assert "ZZ" not in Message.from_dict(row.payload).all_text()


def test_o28_prohibited_category_closes_case_and_notifies(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    inconsistent = press(core, OFFICER, case_id, ActionId.review,
                         {**CLEAN_REVIEW, "prohibited": ["family_private"]})
    assert "prohibited" in inconsistent.errors["outcome"]
    assert press(core, OFFICER, case_id, ActionId.review,
                 {**CLEAN_REVIEW, "prohibited": ["family_private"], "outcome": "misuse"}).ok
    case = case_row(core, case_id)
    assert case.close_reason == CloseReason.prohibited
    targets = {(r.destination_kind, r.destination) for r in outbox(core, case_id)}
    assert {("dm", OPLA), ("channel", "C0USNCB"), ("channel", "C0USCIS")} <= targets


def test_o28_administrative_offense_aimed_at_serious_crime_is_not_prohibited(
    core: Core,
) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.review, {
        **CLEAN_REVIEW, "prohibited": ["administrative_private"], "serious_crime": "yes"}).ok
    assert case_row(core, case_id).stage == Stage.approval


def test_o30_misuse_closes_and_notifies_by_case_id_only(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.review,
                 {**CLEAN_REVIEW, "indicators": ["fabricated_evidence"], "outcome": "misuse"}).ok
    assert case_row(core, case_id).close_reason == CloseReason.misuse
    notices = [r for r in outbox(core, case_id) if r.destination in (OPLA, "C0USNCB", "C0USCIS")]
    assert len(notices) == 3
    for row in notices:
        text = Message.from_dict(row.payload).all_text()
        assert case_id in text
        assert SUBJECT["subject_name"] not in text and "MX" not in text


def _to_doubt(core: Core) -> str:
    case_id = open_case(core)
    to_review(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.review, {
        **CLEAN_REVIEW, "indicators": ["targeted_person"], "outcome": "doubt"}).ok
    assert case_row(core, case_id).stage == Stage.doubt
    return case_id


def test_o29_doubt_minimum_before_resolution_and_no_requesting_ncb(core: Core) -> None:
    case_id = _to_doubt(core)
    early = press(core, OFFICER, case_id, ActionId.doubt_resolve,
                  {"resolution": "resolved", "justification": "checked every source we have"})
    assert "§5.2 minimum" in early.errors["resolution"]
    tip_off = press(core, OFFICER, case_id, ActionId.doubt_step,
                    {"kind": "confer", "partners": ["requesting_ncb"], "note": "asked"})
    assert not tip_off.ok and "§5.2" in (tip_off.refusal or "")
    refusal = entries(core, case_id=case_id, kind="refusal", action="form.doubt_step")
    assert len(refusal) == 1 and not entries(core, case_id=case_id, action="doubt.step")
    protected = press(core, OFFICER, case_id, ActionId.doubt_step,
                      {"kind": "confer", "partners": ["protected_country"], "note": "x"})
    assert "protected status" in protected.errors["partners"]
    for kind, partners in (("confer", ["usncb", "state"]), ("research", []), ("context", [])):
        assert press(core, OFFICER, case_id, ActionId.doubt_step,
                     {"kind": kind, "partners": partners, "note": "done"}).ok
    assert press(core, OFFICER, case_id, ActionId.doubt_resolve,
                 {"resolution": "resolved", "justification": "State found no persecution"}).ok
    assert case_row(core, case_id).stage == Stage.approval
    # The bot never offers a contact to the requesting country in any message.
    for row in outbox(core, case_id):
        labels = [a.label.lower() for a in Message.from_dict(row.payload).actions]
        assert not any("requesting" in label for label in labels)


def test_o29_doubt_can_end_unused(core: Core) -> None:
    case_id = _to_doubt(core)
    assert press(core, OFFICER, case_id, ActionId.doubt_resolve,
                 {"resolution": "unresolved",
                  "justification": "no clarity after all the research"}).ok
    assert case_row(core, case_id).close_reason == CloseReason.doubt_unresolved


def test_o2_o12_approval_routed_to_fro_and_only_chain_may_decide(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    with Session(core.engine) as session:
        approval = session.exec(select(Approval)).one()
    assert approval.routed_to == FRO
    dms = [r for r in outbox(core, case_id) if r.destination_kind == "dm"]
    assert [r.destination for r in dms] == [FRO]
    for outsider in (OFFICER, MANAGER, OPLA, "U0NOBODY"):
        refused = press(core, outsider, case_id, ActionId.approve)
        assert not refused.ok, outsider
    assert len(entries(core, case_id=case_id, kind="refusal")) == 4
    assert case_row(core, case_id).stage == Stage.approval
    # The designee in the chain may decide too.
    assert press(core, DESIGNEE, case_id, ActionId.approve).ok
    assert case_row(core, case_id).stage == Stage.documents


def test_o12_requester_never_approves_own_case(core: Core) -> None:
    from bot.app import load_roster_text, sample_roster_text

    text = sample_roster_text(core.clock.now().date()).replace(
        'roles = ["supervisor"]\naor = "HOU"\ntraining_completed',
        'roles = ["supervisor", "officer"]\naor = "HOU"\ntraining_completed', 1)
    load_roster_text(core, text, actor="test", source="test")
    case_id = open_case(core, actor=FRO)
    to_approval(core, case_id, actor=FRO)
    assert press(core, FRO, case_id, ActionId.request_approval).ok
    with Session(core.engine) as session:
        assert session.exec(select(Approval)).one().routed_to == DESIGNEE
    refused = press(core, FRO, case_id, ActionId.approve)
    assert "own case" in (refused.refusal or "")


def test_r2_double_click_and_stale_approval_decide_once(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    press(core, OFFICER, case_id, ActionId.request_approval)
    value = buttons(core, case_id)[ActionId.approve]
    assert core.click(actor=FRO, value=value).ok
    again = core.click(actor=FRO, value=value)
    assert not again.ok
    with Session(core.engine) as session:
        assert session.exec(select(Approval)).one().status == "approved"


def test_r2_retried_open_submission_creates_one_case(core: Core) -> None:
    values = {"notice_type": "red_notice", "intended_use": "enforcement",
              "extradition_pending": "no", **SUBJECT}
    first = core.submit(actor=OFFICER, form=FormId.open_case, values=values,
                        submission_key="view-123")
    second = core.submit(actor=OFFICER, form=FormId.open_case, values=values,
                         submission_key="view-123")
    assert first.case_id == second.case_id
    assert len([e for e in entries(core, action="case.opened")]) == 1


def test_r4_form_submitted_by_the_wrong_user_is_refused_before_validation(core: Core) -> None:
    case_id = open_case(core)
    outcome = core.submit(actor=MANAGER, form=FormId.validity_sent, values={},
                          case_id=case_id)
    assert not outcome.ok and outcome.refusal and not outcome.errors
    assert entries(core, case_id=case_id, kind="refusal", actor=MANAGER)


def test_deny_needs_a_reason_and_closes(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    press(core, OFFICER, case_id, ActionId.request_approval)
    assert "reason" in press(core, FRO, case_id, ActionId.deny, {"reason": ""}).errors
    assert press(core, FRO, case_id, ActionId.deny, {"reason": "no basis for this use"}).ok
    assert case_row(core, case_id).close_reason == CloseReason.denied


def test_delegate_may_approve_until_the_date(core: Core, clock: ManualClock) -> None:
    from bot.app import load_roster_text, sample_roster_text

    # Make the manager a trained delegate candidate: any roster person may be a designee.
    load_roster_text(core, sample_roster_text(clock.now().date()), actor="t", source="t")
    until = (clock.now().date() + timedelta(days=3)).isoformat()
    assert core.command(actor=FRO, text=f"/notice delegate @{MANAGER} until {until}").ok
    assert core.command(actor=OFFICER, text=f"/notice delegate @{MANAGER} until {until}").refusal
    case_id = open_case(core)
    to_approval(core, case_id)
    press(core, OFFICER, case_id, ActionId.request_approval)
    with Session(core.engine) as session:
        assert session.exec(select(Approval)).one().routed_to == MANAGER
    clock.advance(timedelta(days=4))
    assert press(core, MANAGER, case_id, ActionId.approve).refusal  # delegation over
    assert press(core, FRO, case_id, ActionId.approve).ok


def test_o3_o24_documents_not_requested_before_approval(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    refused = core.click(actor=OFFICER, value=ActionValue(ActionId.documents_sent, case_id))
    assert refused.form is None and "after supervisory approval" in (refused.refusal or "")


def test_o29_documents_not_requested_while_indications_exist(core: Core) -> None:
    case_id = open_case(core)
    to_documents(core, case_id)
    press(core, OFFICER, case_id, ActionId.documents_sent,
          {"documents": ["warrant"], "sent_on": TODAY, "method": "x"})
    press(core, OFFICER, case_id, ActionId.documents_answer,
          {"answer": "received", "received": ["warrant"], "answered_on": TODAY})
    assert press(core, OFFICER, case_id, ActionId.documents_review,
                 {"indications": "yes", "better_evidence": "no",
                  "necessity": "the documents are all we have here"}).ok
    case = case_row(core, case_id)
    assert case.stage == Stage.doubt
    refused = core.click(actor=OFFICER, value=ActionValue(ActionId.documents_sent, case_id))
    assert "indications" in (refused.refusal or "")


def test_o13_o32_no_response_is_recorded_and_o7_necessity_required(core: Core) -> None:
    case_id = open_case(core)
    to_documents(core, case_id)
    press(core, OFFICER, case_id, ActionId.documents_sent,
          {"documents": ["warrant", "police_reports"], "sent_on": TODAY, "method": "x"})
    assert press(core, OFFICER, case_id, ActionId.documents_no_response).ok
    assert press(core, OFFICER, case_id, ActionId.documents_no_response).ok  # same day: once
    with Session(core.engine) as session:
        silent = session.exec(select(UsncbNoResponse)).all()
    assert len(silent) == 1 and silent[0].as_of.isoformat() == TODAY
    missing = press(core, OFFICER, case_id, ActionId.documents_review, {})
    assert "§4.2(2)" in missing.errors["necessity"]
    assert press(core, OFFICER, case_id, ActionId.documents_review,
                 {"necessity": "USNCB silent after follow-ups; removal hearing set"}).ok
    with Session(core.engine) as session:
        request = session.exec(select(UsncbRequest).where(UsncbRequest.kind == "documents")).one()
    assert request.status == "no_response"
    assert case_row(core, case_id).stage == Stage.use_authorization


def test_o25_immigration_use_needs_authorization(core: Core) -> None:
    case_id = open_case(core)
    to_use_authorization(core, case_id)
    assert case_row(core, case_id).documents_preferred
    press(core, OFFICER, case_id, ActionId.use_auth_sent,
          {"purpose": "immigration", "sent_on": TODAY, "method": "OPLA via USNCB"})
    refused = press(core, OFFICER, case_id, ActionId.use_auth_answer,
                    {"answer": "no_response_proceed", "answered_on": TODAY})
    assert "§5.1(5)" in refused.errors["answer"]
    assert press(core, OFFICER, case_id, ActionId.use_auth_answer,
                 {"answer": "denied", "answered_on": TODAY}).ok
    assert case_row(core, case_id).close_reason == CloseReason.use_not_authorized


def test_o4_o20_doj_coordination_when_extradition_pending(core: Core) -> None:
    case_id = open_case(core, extradition_pending="yes")
    to_use_authorization(core, case_id)
    missing = press(core, OFFICER, case_id, ActionId.use_auth_sent,
                    {"purpose": "immigration", "sent_on": TODAY, "method": "x"})
    assert "DOJ" in missing.errors["doj_coordination"]
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent, {
        "purpose": "immigration", "sent_on": TODAY, "method": "x",
        "doj_coordination": "OIA consulted; extradition request pending since May"}).ok


def test_o19_opla_is_brought_in_for_immigration_proceedings(core: Core) -> None:
    case_id = open_case(core)
    to_use_authorization(core, case_id)
    press(core, OFFICER, case_id, ActionId.use_auth_sent,
          {"purpose": "immigration", "sent_on": TODAY, "method": "x"})
    opla = [r for r in outbox(core, case_id) if r.destination == OPLA]
    assert len(opla) == 1 and "§4.4(1)" in Message.from_dict(opla[0].payload).text


def test_enforcement_use_may_proceed_without_answer_on_record(core: Core) -> None:
    case_id = open_case(core, intended_use="enforcement")
    to_use_authorization(core, case_id)
    press(core, OFFICER, case_id, ActionId.use_auth_sent,
          {"purpose": "enforcement", "sent_on": TODAY, "method": "x"})
    assert press(core, OFFICER, case_id, ActionId.use_auth_answer,
                 {"answer": "no_response_proceed", "answered_on": TODAY}).ok
    assert entries(core, case_id=case_id, action="usncb.no_response")
    assert case_row(core, case_id).stage == Stage.disclosure


def _to_disclosure(core: Core) -> str:
    case_id = open_case(core)
    to_use_authorization(core, case_id)
    press(core, OFFICER, case_id, ActionId.use_auth_sent,
          {"purpose": "immigration", "sent_on": TODAY, "method": "x"})
    assert press(core, OFFICER, case_id, ActionId.use_auth_answer,
                 {"answer": "granted", "answered_on": TODAY}).ok
    return case_id


def test_o17_o26_person_gets_documents_and_time_to_respond(core: Core) -> None:
    case_id = _to_disclosure(core)
    no_time = press(core, OFFICER, case_id, ActionId.disclosure,
                    {"provided_on": TODAY, "provided": "warrant copy", "respond_by": TODAY})
    assert "meaningful" in no_time.errors["respond_by"]
    assert press(core, OFFICER, case_id, ActionId.disclosure,
                 {"provided_on": TODAY, "provided": "warrant copy",
                  "respond_by": "2026-12-14"}).ok
    # §5.1(6): the case waits for the response (tests/core/test_lifecycle.py has the window).
    assert case_row(core, case_id).stage == Stage.awaiting_response
    assert press(core, OFFICER, case_id, ActionId.person_response,
                 {"response": "not_contested"}).ok
    assert case_row(core, case_id).stage == Stage.representations


def test_o17_footnote_2_exception_needs_supervisor_sign_off(core: Core) -> None:
    case_id = _to_disclosure(core)
    assert press(core, OFFICER, case_id, ActionId.disclosure_exception,
                 {"justification": "active surveillance of associates"}).ok
    assert press(core, OFFICER, case_id, ActionId.sign_off_exception).refusal
    assert press(core, FRO, case_id, ActionId.refuse_exception,
                 {"reason": "disclose it as usual"}).ok
    assert case_row(core, case_id).stage == Stage.disclosure
    assert press(core, OFFICER, case_id, ActionId.disclosure_exception,
                 {"justification": "an ongoing operation would be exposed"}).ok
    assert press(core, FRO, case_id, ActionId.sign_off_exception).ok
    assert case_row(core, case_id).stage == Stage.representations


def test_o1_o27_o15_ready_only_after_every_step_and_acknowledgment(
    core: Core, clock: ManualClock
) -> None:
    case_id = _to_disclosure(core)
    press(core, OFFICER, case_id, ActionId.disclosure,
          {"provided_on": TODAY, "provided": "warrant copy", "respond_by": "2026-12-14"})
    press(core, OFFICER, case_id, ActionId.person_response, {"response": "not_contested"})
    refused = press(core, OFFICER, case_id, ActionId.representations,
                    {"not_a_warrant": "no", "i213": "yes"})
    assert "not_a_warrant" in refused.errors
    assert press(core, OFFICER, case_id, ActionId.representations,
                 {"not_a_warrant": "yes", "i213": "yes"}).ok
    assert case_row(core, case_id).stage == Stage.ready
    steps = [e.payload_digest for e in entries(core, case_id=case_id, action="step.completed")]
    # validity, review, approval, documents, use auth, disclosure, response, reps
    assert len(steps) == 8


def test_o31_training_must_still_be_current_at_use(core: Core, clock: ManualClock) -> None:
    case_id = _to_disclosure(core)
    press(core, OFFICER, case_id, ActionId.disclosure,
          {"provided_on": TODAY, "provided": "warrant copy", "respond_by": "2026-12-14"})
    press(core, OFFICER, case_id, ActionId.person_response, {"response": "not_contested"})
    clock.advance(timedelta(days=340))
    refused = press(core, OFFICER, case_id, ActionId.representations,
                    {"not_a_warrant": "yes", "i213": "yes"})
    assert "§5.3" in (refused.refusal or "")


def test_o18_no_subject_detail_in_channel_thread_or_dm_messages(core: Core) -> None:
    case_id = _to_disclosure(core)
    press(core, OFFICER, case_id, ActionId.disclosure,
          {"provided_on": TODAY, "provided": "warrant copy", "respond_by": "2026-12-14"})
    press(core, OFFICER, case_id, ActionId.person_response, {"response": "not_contested"})
    press(core, OFFICER, case_id, ActionId.representations,
          {"not_a_warrant": "yes", "i213": "yes"})
    rows = outbox(core)
    assert len(rows) > 20
    for row in rows:
        text = Message.from_dict(row.payload).all_text()
        for detail in SUBJECT.values():
            assert detail not in text, (detail, row.destination_kind)


def test_show_case_details_only_to_authorized_and_recorded(core: Core) -> None:
    case_id = open_case(core)
    shown = core.command(actor=OFFICER, text=f"/notice show {case_id}")
    assert shown.ok and SUBJECT["subject_name"] in shown.private[0].all_text()
    assert core.command(actor=MANAGER, text=f"/notice show {case_id}").ok
    assert core.command(actor=OFFICER_LAPSED, text=f"/notice show {case_id}").refusal
    assert len(entries(core, case_id=case_id, action="case.viewed")) == 2


def test_o6_fro_sees_aor_training_status(core: Core) -> None:
    report = core.command(actor=FRO, text="/notice training").private[0].text
    assert "5 of 7 current" in report and "EXPIRED" in report
    own = core.command(actor=OFFICER, text="/notice training").private[0].text
    assert "AOR" not in own


def test_unknown_command_gets_help(core: Core) -> None:
    outcome = core.command(actor=OFFICER, text="/notice frobnicate")
    text = outcome.private[0].text
    assert "Unknown command" in text and "/notice open" in text


def test_every_state_change_is_in_the_record_chain(core: Core) -> None:
    case_id = open_case(core)
    to_documents(core, case_id)
    actions = [e.action for e in entries(core, case_id=case_id)]
    assert entries(core, action="form.open_case", actor=OFFICER)  # before the case had an id
    for expected in ("case.opened", "usncb.request_sent", "usncb.answer",
                     "review.recorded", "click.request_approval", "approval.requested",
                     "click.approve", "approval.decided", "message.queued"):
        assert expected in actions, expected


def test_thread_prompts_update_in_place_and_cite_sections(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    latest: dict[str, Message] = {}
    for row in outbox(core, case_id):
        message = Message.from_dict(row.payload)
        assert message.key
        latest[message.key] = message
    validity = latest[f"{case_id}:validity"]
    assert validity.title.startswith("✅") and not validity.actions
    assert validity.section == "§5.1(1)"
    assert latest[f"{case_id}:approval"].actions
    assert all(m.section for k, m in latest.items() if not k.endswith(":root"))
