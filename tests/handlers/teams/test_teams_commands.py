"""`notice ...` commands that name a person, in Teams: an @mention is resolved through the
mentioned user's Entra object id (the roster's `teams` identity), a typed roster id is taken as
it is, and `/notice` is understood as well as `notice`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from bot.core.service import Core
from handlers.teams.inbound import command_text
from storage.models import Delegation
from tests.handlers.teams.conftest import CASES_CHANNEL, OIDS, TeamsUser
from tests.handlers.teams.test_teams_walk import dialog
from tests.helpers import DESIGNEE, FRO, OFFICER, entries


def _mention(person: str, name: str) -> dict[str, Any]:
    return {"type": "mention", "text": f"<at>{name}</at>",
            "mentioned": {"id": f"29:{OIDS[person]}", "name": name,
                          "aadObjectId": OIDS[person]}}


def _delegations(core: Core) -> list[tuple[str, str]]:
    with Session(core.engine) as session:
        return [(d.delegator, d.delegate) for d in session.exec(select(Delegation))]


def _last_answer(teams: TeamsUser, person: str) -> str:
    """What noticebot last said to `person` in their 1:1 chat ("" if nothing)."""
    said = [c for c in teams.fake.posts() if f"a:dm-{OIDS[person]}" in c.path]
    return str(said[-1].body) if said else ""


def test_delegate_names_the_designee_by_an_at_mention(teams: TeamsUser, core: Core) -> None:
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    bot = {"type": "mention", "text": "<at>noticebot</at>",
           "mentioned": {"id": "28:noticebot", "name": "noticebot"}}
    text = f"<at>noticebot</at> notice delegate <at>Dee Designee</at> until {until}"
    assert teams.say(FRO, text, entities=[bot, _mention(DESIGNEE, "Dee Designee")]
                     ).status_code == 200
    assert _delegations(core) == [(FRO, DESIGNEE)]
    assert "Not done" not in _last_answer(teams, FRO)


def test_a_mention_of_someone_not_on_the_roster_is_refused(teams: TeamsUser,
                                                           core: Core) -> None:
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    stranger = {"type": "mention", "text": "<at>Stan</at>",
                "mentioned": {"id": "29:stan", "name": "Stan",
                              "aadObjectId": "99999999-0000-4000-8000-999999999999"}}
    teams.say(FRO, f"notice delegate <at>Stan</at> until {until}", entities=[stranger])
    assert _delegations(core) == []
    assert "not on the roster" in _last_answer(teams, FRO)


def test_delegate_takes_a_typed_roster_id(teams: TeamsUser, core: Core) -> None:
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    teams.say(FRO, f"notice delegate {DESIGNEE} until {until}")
    assert _delegations(core) == [(FRO, DESIGNEE)]


def test_slash_notice_is_a_command_too(teams: TeamsUser, core: Core) -> None:
    teams.say(OFFICER, "/notice help")
    answer = _last_answer(teams, OFFICER)
    assert "start a case" in answer and "Try `notice help`" not in answer
    assert command_text("/notice list") == "list"
    assert command_text("notice delegate <at>Dee</at> until 2026-12-31",
                        {"<at>Dee</at>": "oid-dee"}) == "delegate <@oid-dee> until 2026-12-31"
    assert command_text("<at>noticebot</at> notices") is None


def _channel_command(teams: TeamsUser, person: str, text: str) -> dict[str, Any]:
    assert teams.say(person, f"<at>noticebot</at> {text}", channel=True).status_code == 200
    offer = teams.fake.cards(CASES_CHANNEL)[-1]
    data: dict[str, Any] = offer["actions"][0]["data"]
    return data


def test_a_channel_command_runs_only_for_its_author(teams: TeamsUser, core: Core) -> None:
    """Run as whoever pressed Open, FRO's `notice delegate` would delegate the presser's
    authority: another approver pressing it is refused, and the refusal recorded."""
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    data = _channel_command(teams, FRO, f"notice delegate {DESIGNEE} until {until}")
    other = dialog(teams.fetch(DESIGNEE, data))
    assert isinstance(other, str) and "typed the command" in other
    assert _delegations(core) == []
    assert entries(core, action="command.not_author", actor=DESIGNEE)
    mine = dialog(teams.fetch(FRO, data))
    assert "Not done" not in json.dumps(mine)
    assert _delegations(core) == [(FRO, DESIGNEE)]


def test_a_command_that_changes_something_is_acted_on_once_per_message(
        teams: TeamsUser, core: Core) -> None:
    data = _channel_command(teams, OFFICER, "notice help")
    assert data["message"] and data["by"] == OIDS[OFFICER]  # the button carries its author
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    delegating = _channel_command(teams, FRO, f"notice delegate {DESIGNEE} until {until}")
    dialog(teams.fetch(FRO, delegating))
    dialog(teams.fetch(FRO, delegating))  # Open pressed again
    assert len(entries(core, action="command.delegate", actor=FRO)) == 1
    assert _delegations(core) == [(FRO, DESIGNEE)]
    # A command that only reads is answered on every press.
    helping = _channel_command(teams, FRO, "notice help")
    dialog(teams.fetch(FRO, helping))
    dialog(teams.fetch(FRO, helping))
    assert len(entries(core, action="command.help", actor=FRO)) == 2
