"""The form machinery every surface shares: numbers, codes, dependent questions, defaults,
dates, and what the case's state already answers."""

from __future__ import annotations

from datetime import date

import pytest

from bot.core.errors import FormErrors
from bot.core.forms import (
    FieldError,
    check_field,
    narrowed,
    open_case_form,
    shown,
    validate,
)
from bot.core.service import Core
from bot.core.workflow import build_form
from bot.messages import ActionId, ActionValue, FormId
from storage.models import Case, IntendedUse, NoticeType
from tests.helpers import OFFICER, TODAY, open_case, press, to_documents

DAY = date(2026, 11, 23)


def _case(**overrides: object) -> Case:
    values: dict[str, object] = {
        "id": "RN-2026-0001", "aor_id": "HOU", "notice_type": NoticeType.red_notice,
        "intended_use": IntendedUse.enforcement, "extradition_pending": False,
        "officer": OFFICER, "channel": "C0", "stage": "validity",
        "opened_at": "2026-11-23T15:00:00+00:00", "notice_reference": "A-1/2026",
        "subject_name": "X", "issuing_country": "MX", "offense_summary": "robbery",
        **overrides}
    return Case.model_validate(values)


OPEN_VALUES = {"notice_type": "1", "notice_reference": "A-1/2026", "subject_name": "X",
               "issuing_country": "MX", "offense_summary": "robbery", "intended_use": "1"}


@pytest.mark.parametrize(("typed", "expected"), [("1", True), ("2", False), ("Yes", True),
                                                 ("n", False)])
def test_yes_no_takes_the_numbers_it_prints(typed: str, expected: bool) -> None:
    clean = validate(open_case_form(), {**OPEN_VALUES, "extradition_pending": typed})
    assert clean["extradition_pending"] is expected
    assert clean["notice_type"] == "red_notice" and clean["intended_use"] == "enforcement"


def test_yes_no_refusal_names_the_numbers() -> None:
    with pytest.raises(FormErrors) as refused:
        validate(open_case_form(), {**OPEN_VALUES, "extradition_pending": "3"})
    assert "1 = Yes" in refused.value.errors["extradition_pending"]


def test_review_indicators_keep_one_number_in_every_question() -> None:
    form = build_form(FormId.review, _case(), today=DAY)
    present = {o.value: code for code, o in form.field("indicators").codes()}
    dismissed = {o.value: code for code, o in form.field("dismissed").codes()}
    assert present["misuser_charges"] == dismissed["misuser_charges"]
    assert all(dismissed[value] == code for value, code in present.items())
    # The same number means the same indicator when typed into either question.
    clean = validate(form, {"indicators": present["misuser_charges"],
                            "dismissed": present["misuser_charges"],
                            "dismissal_note": "charges are ordinary robbery",
                            "sources": "1,2,3,4", "outcome": "1"})
    assert clean["indicators"] == clean["dismissed"] == ["misuser_charges"]


def test_dependent_questions_are_asked_only_when_their_condition_holds() -> None:
    form = build_form(FormId.review, _case(), today=DAY)
    assert not shown(form.field("serious_crime"), {"prohibited": ["family_private"]})
    assert shown(form.field("serious_crime"), {"prohibited": ["administrative_private"]})
    assert not shown(form.field("dismissed"), {"indicators": []})
    assert shown(form.field("dismissed"), {"indicators": ["usg_employee"]})
    # An answer to a question that does not apply is not kept.
    clean = validate(form, {"serious_crime": "yes", "sources": "1,2,3,4", "outcome": "1"})
    assert clean["serious_crime"] is None
    # With an automatic indicator, the dismissal question always applies.
    auto = build_form(FormId.review, _case(), today=DAY, automatic=("watchlist",))
    assert shown(auto.field("dismissed"), {"indicators": []})


def test_required_fields_say_so_and_defaults_match_the_text() -> None:
    form = build_form(FormId.documents_sent, _case(), today=DAY)
    documents = form.field("documents")
    assert documents.required and documents.initial == ("warrant", "indictment", "charging",
                                                        "conviction", "police_reports")
    with pytest.raises(FieldError, match="choose at least one"):
        check_field(documents, "")
    serious = build_form(FormId.review, _case(), today=DAY).field("serious_crime")
    with pytest.raises(FormErrors) as refused:
        validate(build_form(FormId.review, _case(), today=DAY),
                 {"prohibited": "C", "sources": "1,2,3,4", "outcome": "3"})
    assert serious.required and "serious_crime" in refused.value.errors


@pytest.mark.parametrize(("typed", "expected"), [
    ("2026-12-07", date(2026, 12, 7)), ("12/07/2026", date(2026, 12, 7)),
    ("today", DAY), ("+14d", date(2026, 12, 7)), ("-2d", date(2026, 11, 21)),
])
def test_dates_as_officers_type_them(typed: str, expected: date) -> None:
    spec = build_form(FormId.disclosure, _case(), today=DAY).field("respond_by")
    assert check_field(spec, typed, today=DAY) == expected


def test_bad_date_is_refused_at_the_field() -> None:
    spec = build_form(FormId.disclosure, _case(), today=DAY).field("respond_by")
    with pytest.raises(FieldError, match="MM/DD/YYYY"):
        check_field(spec, "next week", today=DAY)


def test_state_answers_are_not_asked_again(core: Core) -> None:
    case_id = open_case(core)
    to_documents(core, case_id)
    # No extradition request pending: no DOJ question.
    assert press(core, OFFICER, case_id, ActionId.documents_sent,
                 {"documents": ["warrant"], "sent_on": TODAY, "method": "USNCB e-mail"}).ok
    assert press(core, OFFICER, case_id, ActionId.documents_no_response).ok
    review = core.click(actor=OFFICER, value=ActionValue(ActionId.documents_review, case_id))
    assert review.form is not None
    # Nothing was received: only why the notice is used in lieu of documents is asked.
    assert [f.name for f in review.form.fields] == ["necessity"]
    assert press(core, OFFICER, case_id, ActionId.documents_review,
                 {"necessity": "hearing set; USNCB silent"}).ok
    form = core.click(actor=OFFICER, value=ActionValue(ActionId.use_auth_sent, case_id)).form
    assert form is not None
    assert "doj_coordination" not in {f.name for f in form.fields}
    # How requests are sent through the local procedure is remembered from the last one.
    assert form.field("method").initial == "USNCB e-mail"
    assert form.field("purpose").initial == "immigration"


def test_the_local_procedure_is_remembered_across_cases(core: Core) -> None:
    first = open_case(core)
    assert press(core, OFFICER, first, ActionId.validity_sent,
                 {"sent_on": TODAY, "method": "I-LINK"}).ok
    second = open_case(core, notice_reference="B-2/2026")
    form = core.click(actor=OFFICER, value=ActionValue(ActionId.validity_sent, second)).form
    assert form is not None and form.field("method").initial == "I-LINK"
    assert core.submit(actor=OFFICER, form=form.form_id, values={"sent_on": "today",
                                                                "method": "I-LINK"},
                       case_id=second).errors == {}


def test_dismissal_offers_only_present_indicators_with_their_numbers() -> None:
    form = build_form(FormId.review, _case(), today=DAY, automatic=("watchlist",))
    question = narrowed(form.field("dismissed"), {"indicators": ["usg_employee"]})
    assert [(code, o.value) for code, o in question.codes()] == [("3", "watchlist"),
                                                                 ("7", "usg_employee")]
    assert check_field(question, "7") == ["usg_employee"]
    with pytest.raises(FieldError, match="'5' is not one of 3"):
        check_field(question, "5")
