"""What the sweeps send reaches Teams users as 1:1 cards, as it reaches Slack users as DMs: the
manager's weekly digest, the approver's reminder and the escalation to the next in the chain;
and a delivery that Teams answers 429, 412 or 5xx is retried until it lands, nothing lost."""

from __future__ import annotations

from datetime import timedelta

from bot.app import build_core
from bot.clock import ManualClock
from bot.core.service import Core
from bot.schedule.runner import sweep_once
from config.platforms import Platform
from config.settings import Settings
from tests.handlers.teams.card_schema import problems
from tests.handlers.teams.conftest import OIDS, TeamsUser, teams_settings
from tests.handlers.teams.test_teams_walk import press, to_approval
from tests.helpers import DESIGNEE, FRO, MANAGER, OFFICER, case_row


def _titles(teams: TeamsUser, person: str) -> list[str]:
    return [str(card["body"][0]["text"]) for card in teams.fake.cards(f"a:dm-{OIDS[person]}")]


def test_digest_reminder_and_escalation_arrive_as_1to1_cards(
        teams: TeamsUser, core: Core, settings: Settings, clock: ManualClock) -> None:
    case_id = to_approval(teams, core)
    press(teams, OFFICER, "request_approval")
    teams.relay()
    on_teams = build_core(settings.model_copy(update={
        "teams": teams_settings(), "platforms": (Platform.teams,)}),
        clock=core.clock, engine=core.engine)
    for _ in range(7):  # a week of daily sweeps with the approval left waiting
        clock.advance(timedelta(days=1))
        sweep_once(on_teams)
        teams.relay()
    assert any(t.startswith("Weekly digest") for t in _titles(teams, MANAGER))
    assert f"Reminder: approval waiting for {case_id}" in _titles(teams, FRO)
    assert f"Escalated: approval waiting for {case_id}" in _titles(teams, DESIGNEE)
    for person in (MANAGER, FRO, DESIGNEE):
        for card in teams.fake.cards(f"a:dm-{OIDS[person]}"):
            assert problems(card) == []
    assert case_row(core, case_id).stage == "approval"


def test_throttled_and_failing_sends_are_retried_until_they_land(
        teams: TeamsUser, core: Core, clock: ManualClock) -> None:
    case_id = to_approval(teams, core)
    teams.relay()
    teams.fake.failures += [(429, {"Retry-After": "1"}), (412, {}), (502, {}), (504, {})]
    said = press(teams, OFFICER, "request_approval")
    assert isinstance(said, str) and not said.startswith("Not done")
    for _ in range(10):  # each failure holds its row back a little: let the clock run on
        teams.relay()
        clock.advance(timedelta(minutes=1))
    assert teams.fake.failures == []  # every injected failure was met
    assert f"Approval requested: {case_id}" in _titles(teams, FRO)  # and the card landed
