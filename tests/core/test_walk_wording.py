"""Issue 16 in the core, where every surface gets it: refusals that say what happened, marks
that tell good from adverse, wording that credits the right party, what OPLA sees of a
must-not-use case, confirm dialogs, and a digest without noise."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.core.context import unit_of_work
from bot.core.service import Core
from bot.messages import ActionId, ActionValue, Mark, Message
from bot.schedule.digest import build_digest
from storage.models import OutboxMessage
from tests.helpers import (
    CLEAN_REVIEW,
    DESIGNEE,
    FRO,
    MANAGER,
    OFFICER,
    OPLA,
    TODAY,
    buttons,
    open_case,
    press,
    to_approval,
    to_documents,
    to_review,
    to_use_authorization,
)


def latest(core: Core, case_id: str) -> dict[str, Message]:
    """The newest version of each of the case's keyed messages."""
    found: dict[str, Message] = {}
    with Session(core.engine) as session:
        for row in session.exec(select(OutboxMessage).where(OutboxMessage.case_id == case_id)
                                .order_by(col(OutboxMessage.id))):
            message = Message.from_dict(row.payload)
            if message.key:
                found[message.key] = message
    return found


def test_issue16_6_finished_step_says_already_done_by_whom_and_when(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    again = core.click(actor=OFFICER, value=ActionValue(ActionId.validity_sent, case_id))
    assert again.refusal_code == "already_done"
    assert "'Verify validity' is already done" in (again.refusal or "")
    assert f"<@{OFFICER}> on {TODAY}" in (again.refusal or "")
    assert "needs" not in (again.refusal or "")


def test_issue16_6_second_approver_hears_who_decided(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    approve = buttons(core, case_id).get(ActionId.approve)
    assert approve is not None
    assert core.click(actor=FRO, value=approve).ok
    late = core.click(actor=DESIGNEE, value=approve)
    assert not late.ok and "already done" in (late.refusal or "")
    assert f"by <@{FRO}>" in (late.refusal or "") and "Supervisory approval" in (late.refusal
                                                                                or "")


def test_issue16_7_adverse_outcomes_do_not_wear_a_green_tick(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.review,
                 {**CLEAN_REVIEW, "indicators": ["fabricated_evidence"], "outcome": "misuse"}).ok
    messages = latest(core, case_id)
    review = messages[f"{case_id}:review"]
    assert review.mark is Mark.adverse and review.title.startswith("⛔")
    assert messages[f"{case_id}:validity"].mark is Mark.good
    assert messages[f"{case_id}:validity"].title.startswith("✅")
    assert messages[f"{case_id}:final"].title.startswith("⛔")


def test_issue16_7_denied_approval_is_adverse_and_waiting_is_its_own_mark(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    waiting = latest(core, case_id)[f"{case_id}:approval"]
    assert waiting.mark is Mark.waiting and waiting.title.startswith("⏳")
    assert press(core, FRO, case_id, ActionId.deny, {"reason": "the basis given is too thin"}).ok
    denied = latest(core, case_id)[f"{case_id}:approval"]
    assert denied.mark is Mark.adverse and denied.title.startswith("⛔")
    refused = core.click(actor=OFFICER, value=ActionValue(ActionId.approve, case_id))
    assert refused.private[0].mark is Mark.refused and refused.private[0].title.startswith("🚫")


def test_issue16_8_record_wording_credits_who_recorded_and_uses_labels(core: Core) -> None:
    case_id = open_case(core)
    to_use_authorization(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "immigration", "sent_on": TODAY, "method": "e-mail"}).ok
    assert press(core, OFFICER, case_id, ActionId.use_auth_answer,
                 {"answer": "granted", "answered_on": TODAY}).ok
    assert press(core, OFFICER, case_id, ActionId.disclosure,
                 {"provided_on": TODAY, "provided": "warrant", "respond_by": "+14d"}).ok
    messages = latest(core, case_id)
    granted = messages[f"{case_id}:use_authorization"].text
    assert granted == (f"Use authorization granted for immigration proceedings. "
                       f"Recorded by <@{OFFICER}> on {TODAY}.")
    disclosed = messages[f"{case_id}:disclosure"].text
    assert "until 2026-12-07. Recorded by" in disclosed
    assert "by <@" not in disclosed.replace("Recorded by <@", "")
    assert messages[f"{case_id}:approval"].text.endswith(f"by <@{FRO}>.")
    shown = core.click(actor=OFFICER, value=ActionValue(ActionId.show_case, case_id)).private[0]
    everything = shown.all_text()
    assert "use_authorization" not in everything and "use authorization request" in everything
    assert ("Intended use", "In immigration proceedings (EOIR)") in shown.fields


def test_issue16_8_console_help_has_no_chat_markup(core: Core) -> None:
    import io

    from handlers.console_script import ScriptedConsole

    out = io.StringIO()
    ScriptedConsole(core, ["/notice help"], stdout=out).run()
    assert "`" not in out.getvalue() and "/notice open start a case" in out.getvalue()


def test_issue16_8_console_shows_a_default_by_its_label(core: Core) -> None:
    import io

    from handlers.console_script import ScriptedConsole

    case_id = open_case(core, intended_use="enforcement")
    to_documents(core, case_id)
    out = io.StringIO()
    ScriptedConsole(core, [
        f"thread {case_id}", "press Record documents request sent", {"method": "e-mail"},
        "press Record no response", "press Review and decide",
        {"necessity": "the removal hearing is already set"},
        "press Record use authorization request sent", {"purpose": "1"},
    ], stdout=out).run()
    transcript = out.getvalue()
    assert "[enforcement]" not in transcript
    assert "Purpose: To inform an enforcement action" in transcript


def test_issue16_9_opla_sees_why_a_notice_must_not_be_used(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.review, {
        **CLEAN_REVIEW, "prohibited": ["administrative_private"], "serious_crime": "no",
        "indicators": ["targeted_person"], "outcome": "misuse",
        "notes": "the 'fraud' charge tracks the subject's reporting"}).ok
    for viewer in (OPLA, FRO):
        shown = core.click(actor=viewer, value=ActionValue(ActionId.show_case, case_id))
        assert shown.ok
        notes = "\n".join(shown.private[0].notes)
        assert "Material evidence of misuse or a prohibited notice" in notes
        assert "Administrative violation or private dispute" in notes
        assert "human-rights defender" in notes
        assert "INTERPOL guidance and rules (RPD)" in notes
        assert "tracks the subject's reporting" in notes


def test_issue16_12_approve_deny_and_withdraw_ask_for_confirmation(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    actions = {a.value.action: a for m in latest(core, case_id).values() for a in m.actions}
    with Session(core.engine) as session:
        dms = [Message.from_dict(r.payload) for r in session.exec(
            select(OutboxMessage).where(OutboxMessage.destination == FRO))]
    actions.update({a.value.action: a for m in dms for a in m.actions})
    for action in (ActionId.approve, ActionId.deny, ActionId.withdraw):
        confirm = actions[action].confirm
        assert confirm is not None and case_id in confirm.text, action
    assert actions[ActionId.show_case].confirm is None


def test_issue16_10_digest_counts_training_only_for_those_who_use_notices(core: Core) -> None:
    with unit_of_work(core.engine, clock=core.clock, settings=core.settings,
                      actor="test") as ctx:
        digest = build_digest(ctx, MANAGER)
    training = [n for n in digest.notes if n.startswith("Training:")]
    assert any("U0OFF2" in n for n in training)  # the lapsed officer
    assert not any("U0REC1" in n for n in training)  # records staff do not use notices
