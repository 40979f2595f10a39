"""The Teams driver of the canonical walk (tests/walk.py): the same moves the core, console and
Slack drivers replay, pressed on the cards the real delivery loop posted to the fake Bot
Connector, to the end of the case (closed), with the Slack walk's assertions."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from bot.core.service import Core
from bot.messages import ActionId
from storage import record
from storage.models import Stage
from storage.vault import Vault
from tests.conftest import TEST_KEY
from tests.handlers.teams.card_schema import problems
from tests.handlers.teams.conftest import CASES_CHANNEL, OIDS, TeamsUser
from tests.handlers.teams.test_teams_walk import dialog, open_case, press, submit_data
from tests.helpers import FRO, SUBJECT, case_row
from tests.walk import CANONICAL_WALK, Move


def play(teams: TeamsUser, move: Move) -> None:
    """Press the move's button (an approver's in their 1:1 chat), fill the dialog it opens;
    a confirmation dialog (Approve) is submitted as shown."""
    prefix = f"a:dm-{OIDS[move.actor]}" if move.actor == FRO else ""
    shown: str | dict[str, Any] = press(teams, move.actor, move.action.value, move.values,
                                       prefix=prefix)
    if isinstance(shown, dict):  # a dialog with nothing to fill: confirm it
        shown = dialog(teams.submit(move.actor, submit_data(shown)))
    assert isinstance(shown, str) and not shown.startswith("Not done"), (move, shown)


def test_o21_canonical_walk_through_teams_to_closed(teams: TeamsUser, core: Core) -> None:
    case_id = open_case(teams, core)
    teams.relay()
    roots = [c for c in teams.fake.posts()
             if c.path == f"/v3/conversations/{CASES_CHANNEL}/activities"]
    assert len(roots) == 1  # one root card in the AOR channel
    for move in CANONICAL_WALK:
        play(teams, move)
        if move.action is ActionId.request_approval:
            teams.relay()  # the approval request came as a 1:1 card to the FRO
            assert teams.fake.cards(f"a:dm-{OIDS[FRO]}")
        if move.reaches is not None:
            assert case_row(core, case_id).stage == move.reaches, move
    teams.relay()
    assert case_row(core, case_id).stage == Stage.closed
    root = teams.roots[case_id]
    # Every prompt a reply in the root's thread, updated in place as steps were done.
    assert any(f"{CASES_CHANNEL};messageid={root}" in c.path for c in teams.fake.posts())
    assert any(c.method == "PUT" for c in teams.fake.calls)
    shown = json.dumps(teams.fake.cards(CASES_CHANNEL), ensure_ascii=False)
    assert "Use recorded" in shown
    for detail in SUBJECT.values():  # O18: no subject detail in any channel card
        assert detail not in shown
    for card in teams.fake.cards():
        assert problems(card) == [], problems(card)
    # The people the thread's new posts name are mentioned, by their Entra object id.
    mentioned = {e["mentioned"]["id"] for card in teams.fake.cards(CASES_CHANNEL)
                 for e in card.get("msteams", {}).get("entities", [])}
    assert mentioned and mentioned <= set(OIDS.values())
    with Session(core.engine) as session:
        assert record.verify(session, Vault((TEST_KEY,))).ok
