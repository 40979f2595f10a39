"""`notice ...` commands that name a person, in Teams: an @mention is resolved through the
mentioned user's Entra object id (the roster's `teams` identity), a typed roster id is taken as
it is, and `/notice` is understood as well as `notice`; each message is answered once, the answer
tried again when Teams refuses it for now."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from bot.app import build_core
from bot.core.identities import PlatformUser
from bot.core.service import Core
from config.platforms import Platform
from config.settings import Settings
from handlers.teams.app import send_reply
from handlers.teams.inbound import PRIVATE_HERE, command_text
from storage import record
from storage.db import transaction
from storage.models import Delegation, LitigationHold, OutboxMessage, PersonIdentity
from storage.vault import Vault
from tests.conftest import TEST_KEY
from tests.handlers.teams.conftest import (
    CASES_CHANNEL,
    OIDS,
    STRANGER,
    TeamsUser,
    with_teams_identities,
)
from tests.handlers.teams.fake_teams import FakeTeams, activity
from tests.handlers.teams.test_teams_walk import dialog
from tests.helpers import DESIGNEE, FRO, OFFICER, RECORDS, entries, open_case


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


@pytest.mark.parametrize(("words", "between"), [(("Dee Designee",), " "),
                                               (("Dee", "Designee"), " "),
                                               (("Dee", "Designee"), "&nbsp;")],
                         ids=["one_mention", "a_mention_per_word", "split_by_nbsp"])
def test_delegate_names_the_designee_by_an_at_mention(teams: TeamsUser, core: Core,
                                                      words: tuple[str, ...],
                                                      between: str) -> None:
    """Teams has been seen to send a mention of a name with a space as one mention per word,
    each naming the same person: either way, one designee."""
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    bot = {"type": "mention", "text": "<at>noticebot</at>",
           "mentioned": {"id": "28:noticebot", "name": "noticebot"}}
    shown = between.join(f"<at>{word}</at>" for word in words)
    text = f"<at>noticebot</at> notice delegate {shown} until {until}"
    assert teams.say(FRO, text, entities=[bot, *(_mention(DESIGNEE, w) for w in words)]
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


def _channel_says(teams: TeamsUser) -> list[str]:
    """The plain lines noticebot posted in the AOR channel."""
    return [str(c.body.get("text")) for c in teams.fake.posts()
            if CASES_CHANNEL in c.path and not c.body.get("attachments")]


def test_a_command_that_changes_something_is_done_as_typed_in_a_channel(
        teams: TeamsUser, core: Core) -> None:
    """`@noticebot notice delegate ...` delegates at once, as its author: the channel hears
    only that it was done, and the answer reaches the author's 1:1 chat."""
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    said = teams.say(FRO, f"<at>noticebot</at> notice delegate {DESIGNEE} until {until}",
                     channel=True)
    assert said.status_code == 200
    assert _delegations(core) == [(FRO, DESIGNEE)]
    assert _channel_says(teams)[-1] == ("notice delegate: done. The answer is in your 1:1 "
                                        "chat with noticebot.")
    teams.relay()
    assert "Delegat" in _last_answer(teams, FRO)
    refused = teams.say(OFFICER, f"<at>noticebot</at> notice hold RN-2026-0001 {'x' * 20}",
                        channel=True)
    assert refused.status_code == 200
    assert _channel_says(teams)[-1].startswith("notice hold: not done.")
    teams.relay()
    assert "Not done" in _last_answer(teams, OFFICER)


def test_a_hold_typed_in_a_channel_keeps_its_whole_reason(teams: TeamsUser,
                                                         core: Core) -> None:
    """Done as typed, a long hold reason is kept whole (a button carrying the command would
    have had to cut it)."""
    case_id = open_case(core)
    records_oid = "00000042-0000-4000-8000-000000000042"
    with transaction(core.engine) as session:  # the records officer, on Teams too
        session.add(PersonIdentity(user_id=RECORDS, platform=Platform.teams,
                                   external_id=records_oid))
    reason = "matter " + "w" * 600 + " END"
    said = teams.say(records_oid, f"<at>noticebot</at> notice hold {case_id} {reason}",
                     channel=True)
    assert said.status_code == 200, said.text
    assert _channel_says(teams)[-1].startswith("notice hold: done.")
    with Session(core.engine) as session:
        [hold] = session.exec(select(LitigationHold).where(
            LitigationHold.case_id == case_id)).all()
    assert hold.reason == reason


def test_a_channel_command_delivered_twice_is_done_and_answered_once(
        teams: TeamsUser, core: Core) -> None:
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    text = f"<at>noticebot</at> notice delegate {DESIGNEE} until {until}"
    for _ in range(2):
        assert teams.say(FRO, text, channel=True, activity_id="m-1").status_code == 200
    assert len(entries(core, action="command.delegate", actor=FRO)) == 1
    assert len(_channel_says(teams)) == 1
    with Session(core.engine) as session:  # and one answer in the author's chat
        assert len(session.exec(select(OutboxMessage).where(
            OutboxMessage.destination == FRO)).all()) == 1


def test_a_command_that_only_reads_delivered_twice_is_answered_once(
        teams: TeamsUser, core: Core) -> None:
    """Teams hands a message on again when its first delivery seemed to fail: the channel
    gets one Open button, the 1:1 chat one answer."""
    for _ in range(2):
        assert teams.say(OFFICER, "<at>noticebot</at> notice list", channel=True,
                         activity_id="m-2").status_code == 200
    assert len(teams.fake.cards(CASES_CHANNEL)) == 1
    for _ in range(2):
        assert teams.say(OFFICER, "notice help", activity_id="m-3").status_code == 200
    assert len([c for c in teams.fake.posts() if f"a:dm-{OIDS[OFFICER]}" in c.path]) == 1
    assert len(entries(core, action="command.help", actor=OFFICER)) == 1
    # Another message with the same words is another request.
    assert teams.say(OFFICER, "notice help", activity_id="m-4").status_code == 200
    assert len(entries(core, action="command.help", actor=OFFICER)) == 2
    for _ in range(2):
        assert teams.say(OFFICER, "notice home", activity_id="m-5").status_code == 200
    assert len(entries(core, action="event.home_opened", actor=OFFICER)) == 1


def test_an_open_button_runs_only_for_its_author(teams: TeamsUser, core: Core) -> None:
    """A channel's Open button carries its author: another person pressing it is refused, and
    that is recorded. A button carrying a command that changes something (a card from before
    such commands were done as typed, or a forged one) acts for no one: run as whoever
    pressed it, a `notice delegate` would lend the presser's authority."""
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    for author in (OIDS[FRO], None):  # an old card of a sender without an object id: none
        data = {"msteams": {"type": "task/fetch"}, "dialog_id": "nb", "by": author,
                "message": "m-old", "command": f"delegate {DESIGNEE} until {until}"}
        for presser in (DESIGNEE, FRO):
            refused = dialog(teams.fetch(presser, data))
            assert isinstance(refused, str) and "Type the command again" in refused
    assert _delegations(core) == []
    assert len(entries(core, action="command.old_button")) == 4
    listing = _channel_command(teams, OFFICER, "notice list")
    assert listing["by"] == OIDS[OFFICER] and listing["message"]
    assert "typed the command" in str(dialog(teams.fetch(FRO, listing)))
    # A command that only reads is answered on every press.
    dialog(teams.fetch(OFFICER, listing))
    dialog(teams.fetch(OFFICER, listing))
    assert len(entries(core, action="command.list", actor=OFFICER)) == 2


def test_a_mention_alone_or_without_notice_is_a_command_too(teams: TeamsUser,
                                                            core: Core) -> None:
    assert _channel_command(teams, OFFICER, "list")["command"] == "list"
    teams.say(OFFICER, "help")  # in the 1:1 chat, every message is to the bot
    answer = _last_answer(teams, OFFICER)
    assert "start a case" in answer
    assert "after @noticebot" in answer and "notice home" in answer  # how Teams differs
    # ... and the record holds the help as it was shown.
    [said] = entries(core, action="message.private", actor=OFFICER)[-1:]
    with Session(core.engine) as session:
        shown = record.payload_of(session, said.seq, Vault((TEST_KEY,)))
    assert "after @noticebot" in json.dumps(shown)


@pytest.mark.parametrize(("typed", "action"), [
    ("", "command.help"),  # a bare mention
    ("notice help", "command.help"),
    ("notice frobnicate", "command.unknown"),
])
def test_help_or_a_word_that_is_no_command_is_answered_in_the_channel_at_once(
        teams: TeamsUser, core: Core, typed: str, action: str) -> None:
    """Neither answer holds anything private: it is shown in the channel straight away, not
    behind an Open button that said nothing of what was wrong, and it is recorded."""
    assert teams.say(OFFICER, f"<at>noticebot</at> {typed}", channel=True).status_code == 200
    shown = json.dumps(teams.fake.cards(CASES_CHANNEL))
    assert "start a case" in shown and PRIVATE_HERE not in shown
    assert ("Unknown command 'frobnicate'" in shown) is (action == "command.unknown")
    assert len(entries(core, action=action, actor=OFFICER)) == 1


def test_home_in_a_channel_is_never_shown_there(teams: TeamsUser, core: Core) -> None:
    """`home` is the person's own overview (their cases, the approvals waiting for them): in a
    channel it is behind the Open button like any private answer, never posted."""
    from tests.helpers import open_case

    case_id = open_case(core)
    offer = _channel_command(teams, OFFICER, "notice home")
    assert offer["command"] == "home" and case_id not in json.dumps(teams.fake.cards())
    shown = dialog(teams.fetch(OFFICER, offer))
    assert case_id in json.dumps(shown)  # the overview, in the author's dialog


def test_a_channel_message_from_no_user_of_the_tenant_is_refused_and_recorded(
        teams: TeamsUser, core: Core) -> None:
    body = activity("message", object_id=None, service_url=teams.fake.url,
                    text="<at>noticebot</at> notice list", conversation=CASES_CHANNEL,
                    conversation_type="channel")
    assert teams.post(body).status_code == 200
    assert not [c for c in teams.fake.cards(CASES_CHANNEL) if "Open" in json.dumps(c)]
    assert entries(core, action="message.unknown_user")


def test_someone_not_on_the_roster_is_told_why_in_the_channel(teams: TeamsUser,
                                                               core: Core) -> None:
    """No 1:1 chat to answer in: the channel line says why it was not done, and the record
    does not claim a direct message was queued."""
    said = teams.say(STRANGER, "<at>noticebot</at> notice hold RN-2026-0001 a reason",
                     channel=True)
    assert said.status_code == 200
    assert _channel_says(teams)[-1].startswith("notice hold: Not done: ")
    assert "roster" in _channel_says(teams)[-1]
    assert not entries(core, action="message.queued", actor=f"teams:{STRANGER}")


def test_an_answer_by_dm_goes_only_to_the_platform_asked_on(
        core: Core, settings: Settings, fake: FakeTeams) -> None:
    """With Slack and Teams both delivered to, a channel command's answer reaches the person's
    Teams chat only (not a Slack DM as well), and someone not on the roster gets none."""
    with_teams_identities(core, fake)
    both = build_core(settings.model_copy(update={"platforms": (Platform.slack,
                                                                Platform.teams)}),
                      clock=core.clock, engine=core.engine)
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    done = both.command(actor=PlatformUser(Platform.teams, OIDS[FRO]),
                        text=f"delegate {DESIGNEE} until {until}", answer_by_dm=True)
    assert done.ok and done.sent_by_dm
    stranger = both.command(actor=PlatformUser(Platform.teams, STRANGER),
                            text="hold RN-2026-0001 a reason", answer_by_dm=True)
    assert stranger.refusal and not stranger.sent_by_dm
    with Session(core.engine) as session:
        rows = [(r.platform.value, r.destination) for r in session.exec(select(OutboxMessage))]
    assert rows == [("teams", FRO)]


def test_someone_an_answer_names_who_is_not_on_the_roster_reads_as_someone(
        teams: TeamsUser, core: Core) -> None:
    until = (core.clock.now().date() + timedelta(days=7)).isoformat()
    assert teams.say(FRO, f"notice delegate U0NOBODY until {until}").status_code == 200
    assert "someone is not on the roster" in _last_answer(teams, FRO)
    assert "U0NOBODY" not in _last_answer(teams, FRO) and _delegations(core) == []


def _replies(teams: TeamsUser, person: str) -> list[int]:
    """How each try to answer `person` in their 1:1 chat went (the fake's status), in order."""
    return [c.status for c in teams.fake.posts() if f"a:dm-{OIDS[person]}" in c.path]


def test_a_reply_teams_refuses_for_now_is_sent_again(teams: TeamsUser) -> None:
    """The reply to a typed command follows the delivery loop's rules: a 429 (after its
    Retry-After) and a 502 are tried again, so the answer is not lost to a busy moment."""
    teams.fake.failures += [(429, {"Retry-After": "0"}), (502, {})]
    assert teams.say(OFFICER, "notice help").status_code == 200
    assert _replies(teams, OFFICER) == [429, 502, 201]
    assert "notice open" in _last_answer(teams, OFFICER)


def test_a_reply_teams_will_never_take_or_asks_too_long_a_wait_for_is_not_tried_again(
        teams: TeamsUser, caplog: pytest.LogCaptureFixture) -> None:
    """403 (the bot was removed from the chat) will not change; a Retry-After beyond what Teams
    waits for the message's answer is not waited for: one try each, logged as lost."""
    for failure in ((403, {}), (429, {"Retry-After": "60"})):
        teams.fake.failures.append(failure)
        before = len(_replies(teams, OFFICER))
        with caplog.at_level("WARNING", logger="handlers.teams.app"):
            assert teams.say(OFFICER, "notice help").status_code == 200
        assert _replies(teams, OFFICER)[before:] == [failure[0]]
        assert "could not answer a Teams message" in caplog.text
        caplog.clear()


def _refused(status: int, retry_after: str | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "https://smba.example/v3/conversations/a/activities")
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError(str(status), request=request, response=response)


def _sends(*answers: list[Exception | None]) -> tuple[list[Any], list[int]]:
    """A reply's activities, each failing with its answers in turn (None: delivered); and
    how many tries each got."""
    tries = [0] * len(answers)

    def activity(index: int) -> Any:
        async def send() -> None:
            tries[index] += 1
            failure = answers[index][tries[index] - 1]
            if failure is not None:
                raise failure
        return send

    return [activity(i) for i in range(len(answers))], tries


def _sent(sends: list[Any]) -> list[float]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def send() -> None:
        await send_reply(sends, until=asyncio.get_running_loop().time() + 60, sleep=sleep)

    asyncio.run(send())
    return waits


@pytest.mark.parametrize(("failures", "waits"), [
    ([httpx.ReadTimeout("no answer")], [0.5]),
    ([httpx.ConnectError("down"), httpx.ReadTimeout("no answer")], [0.5, 1.0]),
    ([_refused(429, "2")], [2.0]),  # Retry-After, not the back-off
    ([_refused(503), _refused(412)], [0.5, 1.0]),  # any server error, and 412
])
def test_a_reply_refused_for_now_is_tried_again(failures: list[Exception],
                                                 waits: list[float]) -> None:
    sends, tries = _sends([*failures, None])
    assert _sent(sends) == waits
    assert tries == [len(failures) + 1]


@pytest.mark.parametrize("failures", [
    [_refused(403)], [_refused(400)], [_refused(401)],  # will not change by trying again
    [httpx.ReadTimeout("a"), httpx.ReadTimeout("b"), httpx.ReadTimeout("c")],  # three tries
])
def test_a_reply_refused_for_good_or_three_times_is_given_up(failures: list[Exception]
                                                              ) -> None:
    sends, tries = _sends([*failures, None])
    with pytest.raises(type(failures[-1])):
        _sent(sends)
    assert tries == [len(failures)]


def test_the_waits_of_a_whole_reply_are_bounded_together() -> None:
    # The first activity waits 3 s (Retry-After); the second may not wait 2 s more.
    sends, tries = _sends([_refused(429, "3"), None], [_refused(429, "2"), None])
    with pytest.raises(TimeoutError) as raised:
        _sent(sends)
    assert tries == [2, 1]
    assert isinstance(raised.value.__cause__, httpx.HTTPStatusError)


def test_a_reply_still_unsent_when_teams_stops_waiting_is_given_up() -> None:
    async def stalled() -> None:
        await asyncio.sleep(30)

    async def send() -> None:
        await send_reply([stalled], until=asyncio.get_running_loop().time() + 0.05)

    with pytest.raises(TimeoutError):
        asyncio.run(send())


def test_each_request_the_sdk_sends_has_a_time_limit(teams: TeamsUser) -> None:
    from handlers.teams.app import REQUEST_SECONDS

    assert teams.app.http_client.http.timeout.read == REQUEST_SECONDS
