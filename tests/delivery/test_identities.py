"""Neutral identities: which platforms a row goes to, who an inbound user acts as, how a mention
renders, and the roster's identity keys."""

from __future__ import annotations

import gc
from datetime import date, timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import event
from sqlmodel import Session, col, select

from bot.app import load_roster_text
from bot.core import access
from bot.core.context import unit_of_work
from bot.core.identities import PlatformUser, acting_as, mention_ids
from bot.core.service import Core
from bot.delivery.port import Address, Platform, Recipient
from bot.messages import DestinationKind, Form, FormId, Message, Outcome, mention, mentioned_by
from bot.roster import RosterError, parse_roster
from handlers.slack.transport import SlackTransport
from storage.db import reading
from storage.models import AorChannel, OutboxMessage, PersonIdentity
from tests.helpers import entries

TODAY = date(2026, 11, 23)
GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
GUID2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
TEAMS_CHANNEL = "19:abcDEF123@thread.tacv2"
MIXED = f"""
[[aor]]
id = "HOU"
name = "Houston ERO"
supervisors = ["sam"]
channel = "C0HOUCASES"

[aor.teams]
team = "19:team@thread.tacv2"
channel = "{TEAMS_CHANNEL}"
service_url = "https://smba.infra.gcc.teams.microsoft.com/amer/"

[[person]]
user = "U0OFF1"
name = "Olivia Officer"
email = "olivia@example.gov"
roles = ["officer"]
aor = "HOU"

[[person]]
user = "sam"
slack = "U0SAMSLACK"
teams = "{GUID}"
name = "Sam Supervisor"
email = "sam@example.gov"
roles = ["supervisor"]
aor = "HOU"

[[person]]
user = "tina"
teams = "{GUID2}"
name = "Tina Teams"
email = "tina@example.gov"
roles = ["officer"]
aor = "HOU"
"""


def identities(core: Core) -> set[tuple[str, str, str]]:
    with Session(core.engine) as session:
        return {(i.user_id, i.platform, i.external_id)
                for i in session.exec(select(PersonIdentity)).all()}


def test_an_existing_roster_imports_unchanged_and_user_is_the_slack_id(core: Core) -> None:
    # `core` has the bundled sample roster: every `user` is that person's Slack id.
    assert ("U0OFF1", "slack", "U0OFF1") in identities(core)
    assert not entries(core, action="roster.identities_changed")


def test_roster_names_slack_and_teams_identities_and_an_aor_teams_channel(
        bare_core: Core) -> None:
    report = load_roster_text(bare_core, MIXED, actor="admin", source="t")
    assert report.changed
    assert identities(bare_core) == {
        ("U0OFF1", "slack", "U0OFF1"), ("sam", "slack", "U0SAMSLACK"), ("sam", "teams", GUID),
        ("tina", "teams", GUID2)}
    with Session(bare_core.engine) as session:
        channels = {(c.platform, c.conversation) for c in session.exec(select(AorChannel))}
    assert channels == {("slack", "C0HOUCASES"), ("teams", TEAMS_CHANNEL)}
    again = load_roster_text(bare_core, MIXED, actor="admin", source="t")
    assert not again.changed
    # An object id written in upper case is the same identity (Teams sends lower case).
    assert not load_roster_text(bare_core, MIXED.replace(GUID, GUID.upper()), actor="admin",
                                source="t").changed
    moved = MIXED.replace(f'teams = "{GUID2}"', 'slack = "U0TINA"')
    changes = load_roster_text(bare_core, moved, actor="admin", source="t").changes
    assert len(changes) == 1 and "identities_changed" in changes[0]
    assert ("tina", "slack", "U0TINA") in identities(bare_core)


@pytest.mark.parametrize(("text", "expected"), [
    (MIXED.replace('user = "sam"\nslack = "U0SAMSLACK"\nteams', 'user = "sam"\nteams')
     .replace(f'teams = "{GUID}"', f'teams = "{GUID2}"'), "teams id"),
    (MIXED.replace(f'teams = "{GUID}"', 'teams = "not-a-guid"'), "key 'teams'"),
    # The same object id in another case is the same person's.
    (MIXED.replace(f'teams = "{GUID2}"', f'teams = "{GUID.upper()}"'), "teams id"),
    (MIXED.replace('slack = "U0SAMSLACK"', 'slack = "sam"'), "key 'slack'"),
    (MIXED.replace(f'channel = "{TEAMS_CHANNEL}"', 'channel = "C0HOU"'), "key 'teams.channel'"),
    (MIXED.replace('user = "U0OFF1"', 'user = "olivia"'), "not a Slack user id"),
])
def test_r9_identities_are_checked_per_platform(text: str, expected: str) -> None:
    with pytest.raises(RosterError) as error:
        parse_roster(text, today=TODAY)
    assert expected in str(error.value)


def test_rows_go_to_each_platform_the_destination_is_on(bare_core: Core) -> None:
    load_roster_text(bare_core, MIXED, actor="admin", source="t")
    settings = bare_core.settings.model_copy(
        update={"platforms": (Platform.slack, Platform.teams)})
    with unit_of_work(bare_core.engine, clock=bare_core.clock, settings=settings,
                      actor="test") as ctx:
        ctx.send(DestinationKind.dm, "U0OFF1", Message(text="slack only"))
        ctx.send(DestinationKind.dm, "tina", Message(text="teams only"))
        ctx.send(DestinationKind.dm, "sam", Message(text="both"))
        ctx.send(DestinationKind.channel, "C0HOUCASES", Message(text="root", key="C1:root"))
        ctx.send(DestinationKind.thread, "C1", Message(text="reply"))
        ctx.send(DestinationKind.channel, "C0ELSEWHERE", Message(text="slack channel only"))
    with Session(bare_core.engine) as session:
        found = [(r.payload["text"], r.platform, r.destination)
                 for r in session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))]
    assert found == [
        ("slack only", "slack", "U0OFF1"),
        ("teams only", "teams", "tina"),
        ("both", "slack", "sam"), ("both", "teams", "sam"),
        ("root", "slack", "C0HOUCASES"), ("root", "teams", TEAMS_CHANNEL),
        ("reply", "slack", "C1"), ("reply", "teams", "C1"),
        ("slack channel only", "slack", "C0ELSEWHERE"),
    ]
    # One record entry per message, whatever the number of platforms.
    assert len(entries(bare_core, action="message.queued")) == 6


def test_inbound_users_act_as_the_person_whose_identity_they_are(bare_core: Core) -> None:
    load_roster_text(bare_core, MIXED, actor="admin", source="t")

    def person_for(platform: Platform, external_id: str) -> str:
        with reading(bare_core.engine) as session:
            return acting_as(session, PlatformUser(platform, external_id))

    assert person_for(Platform.slack, "U0SAMSLACK") == "sam"
    assert person_for(Platform.teams, GUID) == "sam"
    assert person_for(Platform.teams, GUID.upper()) == "sam"  # a GUID in any case
    assert person_for(Platform.slack, "U0OFF1") == "U0OFF1"
    # Unknown ids act as nobody on the roster; a Slack user whose id is some person's id
    # but not their Slack identity never acts as that person.
    assert person_for(Platform.slack, "U0NOBODY") == "U0NOBODY"
    assert person_for(Platform.slack, "sam") == "slack:sam"
    assert person_for(Platform.teams, "U0OFF1") == "teams:U0OFF1"


def test_the_person_a_platform_user_acts_as_is_read_once_per_interaction(
        bare_core: Core) -> None:
    """The roster check every step makes finds the person resolved with the identity: the
    session must hold on to them (it keeps what it loaded only weakly)."""
    load_roster_text(bare_core, MIXED, actor="admin", source="t")
    with unit_of_work(bare_core.engine, clock=bare_core.clock, settings=bare_core.settings,
                      actor=PlatformUser(Platform.slack, "U0SAMSLACK")) as ctx:
        gc.collect()
        statements: list[str] = []

        def seen(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(bare_core.engine, "before_cursor_execute", seen)
        try:
            found = access.require_person(ctx.session, ctx.actor)
        finally:
            event.remove(bare_core.engine, "before_cursor_execute", seen)
        assert found.user_id == "sam" and statements == []


def test_slack_renders_a_mention_with_the_persons_slack_id() -> None:
    posted: list[dict[str, object]] = []

    class Client(WebClient):
        def chat_postMessage(self, **kwargs: object) -> object:  # type: ignore[override]
            posted.append(kwargs)
            return {"ts": "1.0", "channel": "C1"}

    transport = SlackTransport(Client(token="xoxb-test"))
    people = {"sam": Recipient(user_id="sam", identity="U0SAMSLACK", name="Sam")}
    transport.post(to=Address(conversation="C1"), outbox_id=7, people=people,
                   message=Message(text=f"{mention('sam')} and {mention('U0OTHER')}"))
    assert posted[0]["text"] == "<@U0SAMSLACK> and <@U0OTHER>"


def test_console_names_people_whatever_their_id_looks_like(bare_core: Core) -> None:
    import io

    from handlers.console_script import ScriptedConsole

    load_roster_text(bare_core, MIXED, actor="admin", source="t")
    console = ScriptedConsole(bare_core, [], stdout=io.StringIO(), user="U0OFF1")
    assert console.plain(f"{mention('sam')} and {mention('U0OFF1')}") == (
        "@Sam Supervisor and @Olivia Officer")


def test_the_core_resolves_a_platform_user_inside_the_interaction(bare_core: Core) -> None:
    """An adapter hands the core the platform's user; the person they act as is found in the
    interaction's own transaction, and what is shown to them names people by their ids there."""
    load_roster_text(bare_core, MIXED, actor="admin", source="t")
    outcome = bare_core.command(actor=PlatformUser(Platform.slack, "U0SAMSLACK"), text="list")
    assert outcome.ok
    assert entries(bare_core, action="command.list")[-1].actor == "sam"
    stranger = bare_core.command(actor=PlatformUser(Platform.slack, "sam"), text="list")
    assert stranger.refusal_code is not None  # "sam" is not Sam's Slack id
    assert entries(bare_core, action="command.list")[-1].actor == "slack:sam"
    with Session(bare_core.engine) as session:
        found = mention_ids(session, Platform.slack, [
            Message(text=f"{mention('sam')}, {mention('U0OFF1')} and {mention('tina')}")])
    assert found == {"sam": "U0SAMSLACK", "U0OFF1": "U0OFF1"}  # Tina is not on Slack


def test_the_core_answers_with_the_names_of_the_people_its_answer_mentions(
        bare_core: Core) -> None:
    """A surface that names people (Teams) shows them as the answer's own transaction read
    them; nobody off the roster is named."""
    today = bare_core.clock.now().date()
    trained = MIXED.replace('email = "olivia@example.gov"\n', 'email = "olivia@example.gov"\n'
                            f'training_completed = {today.isoformat()}\n')
    load_roster_text(bare_core, trained, actor="admin", source="t")
    sam = PlatformUser(Platform.teams, GUID)
    until = (today + timedelta(days=3)).isoformat()
    done = bare_core.command(actor=sam, text=f"delegate <@U0OFF1> until {until}")
    assert done.ok and "<@U0OFF1>" in done.private[0].text
    assert done.mention_names == {"U0OFF1": "Olivia Officer"}
    assert done.mention_ids == {}  # Teams shows names; nothing renders the ids
    stranger = bare_core.command(actor=sam, text=f"delegate <@U0NOBODY> until {until}")
    assert stranger.refusal is not None and "<@U0NOBODY>" in stranger.refusal
    assert stranger.mention_names == {}
    # From Slack (which renders a mention's id itself) or with a person id (console, CLI),
    # the names are not looked up: nothing there shows them from the answer.
    for actor in (PlatformUser(Platform.slack, "U0SAMSLACK"), "sam"):
        answer = bare_core.command(actor=actor, text=f"delegate <@U0OFF1> until {until}")
        assert answer.ok and answer.mention_names == {}


def test_the_people_an_answer_mentions_are_found_in_all_it_shows() -> None:
    form = Form(form_id=FormId.deny, title="Deny", fields=(), intro=f"For {mention('c')}.")
    outcome = Outcome(refusal=f"Not {mention('a')}", form=form, private=[
        Message(title=mention("b"), text=f"{mention('a')} and {mention('b')}")])
    assert mentioned_by(outcome) == ["a", "b", "c"]


def test_an_aor_service_url_off_the_clouds_bot_connector_is_refused_at_import(
        bare_core: Core) -> None:
    """With Teams delivered to, a `service_url` the bot's token may not go to (the public
    cloud's in a GCC High deployment) is refused with the whole file, naming the AOR."""
    from config.teams import TeamsCloud, TeamsSettings

    def deployment(cloud: TeamsCloud) -> Core:
        settings = bare_core.settings.model_copy(update={
            "platforms": (Platform.slack, Platform.teams),
            "teams": TeamsSettings(_env_file=None, cloud=cloud)})
        return Core(engine=bare_core.engine, settings=settings, clock=bare_core.clock)

    public = MIXED.replace("https://smba.infra.gcc.teams.microsoft.com/amer/",
                           "https://smba.trafficmanager.net./amer/")
    with pytest.raises(RosterError) as refused:
        load_roster_text(deployment(TeamsCloud.gcc_high), public, actor="t", source="t")
    assert "aor HOU: teams service_url https://smba.trafficmanager.net./amer/" in str(
        refused.value)
    with Session(bare_core.engine) as session:
        assert session.exec(select(AorChannel)).first() is None  # nothing half-written
    load_roster_text(deployment(TeamsCloud.public), public, actor="t", source="t")
    load_roster_text(deployment(TeamsCloud.gcc), MIXED, actor="t", source="t")
