"""Free text that carries a justification the directive asks for needs substance (docs/
obligations.md): a minimum length and word count (settings), placeholders refused, and an inline
error on the field saying what is expected. One validator in the core serves every such field."""

from __future__ import annotations

import pytest

from bot.core.forms import justification_problem
from bot.core.service import Core
from bot.messages import ActionId, FormId
from config.settings import Settings
from tests.helpers import (
    FRO,
    OFFICER,
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

PLACEHOLDERS = ["x", "n/a", "N/A", "tbd", "TBD.", ".", "-", "...", "xxxxxxxx", "aaaa aaaa",
                "none", "see above", "asdf", "test test test test test"]
SUBSTANTIAL = "The warrant was never sent and the removal hearing is set for next week."


@pytest.mark.parametrize("text", PLACEHOLDERS)
def test_o7_the_validator_refuses_placeholders(text: str) -> None:
    problem = justification_problem(text, expects="why it is necessary", min_chars=20,
                                    min_words=4)
    assert problem is not None, text
    assert "why it is necessary" in problem


def test_o7_the_validator_names_the_minimum_and_accepts_substance() -> None:
    short = justification_problem("Urgent case here", expects="why", min_chars=20, min_words=4)
    assert short is not None and "4 words" in short and "20 characters" in short
    assert justification_problem(SUBSTANTIAL, expects="why", min_chars=20, min_words=4) is None


def test_o7_minimums_are_settings_with_sensible_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.justification_min_chars >= 15
    assert settings.justification_min_words >= 3
    strict = Settings(_env_file=None, justification_min_words=20)
    assert strict.justification_min_words == 20


def _to_documents_review(core: Core) -> str:
    case_id = open_case(core)
    to_documents(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.documents_sent,
                 {"documents": ["warrant"], "sent_on": TODAY, "method": "USNCB e-mail"}).ok
    assert press(core, OFFICER, case_id, ActionId.documents_answer,
                 {"answer": "declined", "answered_on": TODAY}).ok
    return case_id


def test_o7_x_is_not_a_necessity_for_using_the_notice_in_lieu_of_documents(core: Core) -> None:
    case_id = _to_documents_review(core)
    outcome = press(core, OFFICER, case_id, ActionId.documents_review, {"necessity": "x"})
    assert not outcome.ok and "necessity" in outcome.errors, outcome
    assert "necessary" in outcome.errors["necessity"]
    assert case_row(core, case_id).stage == "documents"
    assert entries(core, actor=OFFICER, action="form.documents_review.invalid")  # recorded
    assert press(core, OFFICER, case_id, ActionId.documents_review,
                 {"necessity": SUBSTANTIAL}).ok


def test_o20_x_is_not_a_doj_coordination_note(core: Core) -> None:
    case_id = open_case(core, extradition_pending="yes")
    to_use_authorization(core, case_id)
    values = {"purpose": "immigration", "sent_on": TODAY, "method": "USNCB e-mail"}
    outcome = press(core, OFFICER, case_id, ActionId.use_auth_sent,
                    {**values, "doj_coordination": "n/a"})
    assert not outcome.ok and "doj_coordination" in outcome.errors, outcome
    assert "DOJ" in outcome.errors["doj_coordination"]
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent, {
        **values, "doj_coordination": "Spoke with the DOJ Office of International Affairs "
        "on the pending extradition request."}).ok


def test_o17_x_is_not_a_footnote_2_justification(core: Core) -> None:
    case_id = open_case(core)
    to_use_authorization(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.use_auth_sent,
                 {"purpose": "immigration", "sent_on": TODAY, "method": "USNCB e-mail"}).ok
    assert press(core, OFFICER, case_id, ActionId.use_auth_answer,
                 {"answer": "granted", "answered_on": TODAY}).ok
    for text in ("x", "tbd", "jeopardize"):
        outcome = press(core, OFFICER, case_id, ActionId.disclosure_exception,
                        {"justification": text})
        assert not outcome.ok and "justification" in outcome.errors, (text, outcome)
        assert "jeopardize" in outcome.errors["justification"]
    assert press(core, OFFICER, case_id, ActionId.disclosure_exception, {
        "justification": "Telling the person now would alert co-conspirators in an open "
        "smuggling investigation."}).ok


def test_o12_a_denial_needs_a_real_reason(core: Core) -> None:
    case_id = open_case(core)
    to_approval(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    outcome = press(core, FRO, case_id, ActionId.deny, {"reason": "no"})
    assert not outcome.ok and "reason" in outcome.errors, outcome
    assert case_row(core, case_id).stage == "approval"


def test_o29_doubt_conclusion_needs_a_real_basis(core: Core) -> None:
    case_id = open_case(core)
    to_review(core, case_id)
    assert press(core, OFFICER, case_id, ActionId.review, {
        "indicators": ["targeted_person"], "outcome": "doubt",
        "sources": ["interpol_guidance", "law_enforcement_systems", "usg_reports",
                    "public_information"]}).ok
    outcome = press(core, OFFICER, case_id, ActionId.doubt_resolve,
                    {"resolution": "unresolved", "justification": "tbd"})
    assert not outcome.ok and "justification" in outcome.errors, outcome


def test_the_form_tells_what_is_expected(core: Core) -> None:
    case_id = _to_documents_review(core)
    form = core.click(actor=OFFICER, value=buttons(core, case_id)[ActionId.documents_review]).form
    assert form is not None and form.form_id is FormId.documents_review
    assert "words" in form.field("necessity").hint
