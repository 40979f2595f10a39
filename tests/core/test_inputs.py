"""Inputs PostgreSQL cannot store or index (NUL, oversized ids) and ids of the wrong type are
refused by the core with a clear message, and the attempt is on the record (R7). On
PostgreSQL these used to fail inside the database: no answer, no record."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from sqlmodel import Session

from bot.core.service import BAD_INPUT, Core
from bot.messages import ActionId, ActionValue, FormId
from storage import record
from storage.vault import Vault
from tests.conftest import TEST_KEY, on_postgres
from tests.helpers import OFFICER, SUBJECT, TODAY, entries, open_case, run_together

BAD_CASE_IDS = ["RN-\x00", "RN-2026-0001\x00", "R" * 6000, "RN 2026 0001", "", "é"]


def verified(core: Core) -> bool:
    with Session(core.engine) as session:
        return record.verify(session, Vault((TEST_KEY,))).ok


@pytest.mark.parametrize("case_id", [c for c in BAD_CASE_IDS if c])
def test_show_with_an_unusable_case_id_is_refused_and_recorded(core: Core, case_id: str) -> None:
    outcome = core.command(actor=OFFICER, text=f"show {case_id}")
    assert not outcome.ok and outcome.refusal is not None
    assert outcome.refusal_code == BAD_INPUT or "no case" in outcome.refusal.lower()
    assert outcome.private and "Not done" in outcome.private[0].title
    assert entries(core, kind="refusal", action="command.show")
    assert verified(core)


@pytest.mark.parametrize("case_id", BAD_CASE_IDS)
def test_clicks_and_forms_with_unusable_case_ids_are_refused_and_recorded(
    core: Core, case_id: str
) -> None:
    click = core.click(actor=OFFICER, value=ActionValue(ActionId.validity_sent, case_id))
    form = core.submit(actor=OFFICER, form=FormId.validity_sent, case_id=case_id,
                       values={"sent_on": TODAY, "method": "e-mail"})
    for outcome in (click, form):
        assert not outcome.ok and outcome.refusal
    assert len(entries(core, kind="refusal")) == 2
    assert verified(core)


@pytest.mark.parametrize("values", [{"sent_on": TODAY, "method": "e-\x00mail"},
                                    {"sent_on": TODAY, "method": "x", "extra\x00": "y"}])
def test_form_values_with_nul_are_refused_and_recorded(core: Core, values: dict[str, Any]
                                                       ) -> None:
    case_id = open_case(core)
    outcome = core.submit(actor=OFFICER, form=FormId.validity_sent, case_id=case_id,
                          values=values)
    assert not outcome.ok and outcome.refusal_code == BAD_INPUT
    assert "NUL" in (outcome.refusal or "")
    refused = entries(core, kind="refusal", case_id=case_id)
    assert len(refused) == 1
    assert verified(core)


def test_an_open_case_form_with_nul_opens_nothing(core: Core) -> None:
    values = {"notice_type": "red_notice", "intended_use": "immigration",
              "extradition_pending": "no", **SUBJECT, "subject_name": "Ivan\x00"}
    outcome = core.submit(actor=OFFICER, form=FormId.open_case, values=values)
    assert not outcome.ok and outcome.refusal_code == BAD_INPUT
    assert not entries(core, action="case.opened")
    assert verified(core)


@pytest.mark.parametrize("actor", ["", "U0OFF1\x00", "x" * 200, "U0 OFF1", 1, True, None])
def test_unusable_actor_ids_are_refused_and_recorded_as_unidentified(
    core: Core, actor: Any
) -> None:
    """Also what Socket Mode hands the core (it has no HTTP edge to refuse it first)."""
    outcome = core.command(actor=actor, text="list")
    assert not outcome.ok and outcome.refusal_code == BAD_INPUT
    refused = entries(core, kind="refusal")
    assert len(refused) == 1 and refused[0].actor == "unidentified"
    assert verified(core)


def test_r2_delivery_keys_are_kept_a_day_then_forgotten(core: Core) -> None:
    from datetime import timedelta

    from bot.clock import ManualClock

    clock = core.clock
    assert isinstance(clock, ManualClock)
    value = ActionValue(ActionId.show_case, "RN-2026-0001")
    core.click(actor=OFFICER, value=value, delivery_key="slack-click:k1")
    assert core.click(actor=OFFICER, value=value, delivery_key="slack-click:k1").duplicate
    assert core.forget_deliveries() == 0
    clock.advance(timedelta(days=1, minutes=1))
    assert core.forget_deliveries() == 1
    assert not core.click(actor=OFFICER, value=value, delivery_key="slack-click:k1").duplicate


def test_r2_answers_refused_by_their_checks_are_checked_again_when_sent_again(
        core: Core) -> None:
    """Nothing was done for a submission whose answers failed their checks: the same request
    sent again (Submit pressed twice, the error out of sight) gets the errors again, and once
    mended is acted on; only a submission that did something is a re-delivery."""
    case_id = open_case(core)
    submit = partial(core.submit, actor=OFFICER, form=FormId.validity_sent, case_id=case_id,
                     delivery_key="teams-submit:same")
    for _ in range(2):
        invalid = submit(values={"sent_on": "not a date", "method": "e-mail"})
        assert invalid.errors and not invalid.duplicate
    assert submit(values={"sent_on": TODAY, "method": "e-mail"}).ok
    assert submit(values={"sent_on": TODAY, "method": "e-mail"}).duplicate
    assert len(entries(core, case_id=case_id, action="form.validity_sent.invalid")) == 2


@pytest.mark.skipif(not on_postgres(), reason="needs NOTICEBOT_TEST_DATABASE_URL (PostgreSQL)")
def test_r2_twin_deliveries_at_the_same_moment_act_once(core: Core) -> None:
    for round_ in range(5):
        case_id = open_case(core)
        submit = partial(core.submit, actor=OFFICER, form=FormId.validity_sent, case_id=case_id,
                         values={"sent_on": TODAY, "method": "e-mail"},
                         delivery_key=f"slack-view:twin-{round_}")
        outcomes = run_together(submit, submit, submit)
        assert sum(not o.duplicate for o in outcomes) == 1, outcomes
        assert all(o.ok for o in outcomes)
        assert len(entries(core, action="form.validity_sent", case_id=case_id)) == 1
    assert verified(core)
