"""An AOR whose only channel is on Teams (its roster entry has `[aor.teams]` and no Slack
`channel`): a case opened from the channel or from a 1:1 chat gets its root card in the AOR's
Teams channel and its prompts in that card's thread, and no Slack row is queued for it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, delete, select

from bot.core.service import Core
from config.platforms import Platform
from storage.db import transaction
from storage.models import Aor, AorChannel, OutboxMessage
from tests.handlers.teams.conftest import CASES_CHANNEL, OIDS, TeamsUser
from tests.handlers.teams.fake_teams import activity
from tests.handlers.teams.test_teams_walk import OPEN_VALUES, as_strings, cases, dialog, submit_data
from tests.helpers import OFFICER


def _teams_only(core: Core) -> None:
    with transaction(core.engine) as session:
        aor = session.get(Aor, "HOU")
        assert aor is not None
        aor.channel = None
        session.execute(delete(AorChannel).where(col(AorChannel.aor_id) == "HOU",
                                                 col(AorChannel.platform) == Platform.slack))


def _invoke(teams: TeamsUser, name: str, data: dict[str, Any], *, in_chat: bool
            ) -> httpx.Response:
    conversation, kind = ((f"a:dm-{OIDS[OFFICER]}", "personal") if in_chat
                          else (CASES_CHANNEL, "channel"))
    return teams.post(activity("invoke", object_id=OIDS[OFFICER], name=name,
                               value={"data": data}, service_url=teams.fake.url,
                               conversation=conversation, conversation_type=kind))


@pytest.mark.parametrize("in_chat", [True, False], ids=["from_1to1_chat", "from_channel"])
def test_a_teams_only_aor_gets_the_root_card_and_its_thread(teams: TeamsUser, core: Core,
                                                            in_chat: bool) -> None:
    _teams_only(core)
    text = "notice open" if in_chat else "<at>noticebot</at> notice open"
    assert teams.say(OFFICER, text, channel=not in_chat).status_code == 200
    offer = teams.fake.cards(f"a:dm-{OIDS[OFFICER]}" if in_chat else CASES_CHANNEL)[-1]
    form = dialog(_invoke(teams, "task/fetch", offer["actions"][0]["data"], in_chat=in_chat))
    assert isinstance(form, dict)
    done = dialog(_invoke(teams, "task/submit",
                          {**submit_data(form), **as_strings(OPEN_VALUES)}, in_chat=in_chat))
    assert isinstance(done, str) and "opened" in done
    (case,) = cases(core)
    assert case.channel == "HOU"  # the AOR stands for its channels
    teams.relay()
    assert case.id in teams.roots
    root = f"/v3/conversations/{CASES_CHANNEL}/activities"
    assert any(call.path == root for call in teams.fake.posts())
    # The first prompt is a reply in the root card's thread.
    assert any(call.path == f"/v3/conversations/{CASES_CHANNEL};messageid="
               f"{teams.roots[case.id]}/activities" for call in teams.fake.posts())


def test_no_slack_row_is_queued_for_a_teams_only_aor(teams: TeamsUser, core: Core) -> None:
    """In a deployment on both platforms, the AOR's id is no Slack channel: nothing is queued
    there to fail and be dead-lettered."""
    from tests.helpers import open_case

    _teams_only(core)
    both = core.settings.model_copy(update={"platforms": (Platform.slack, Platform.teams)})
    case_id = open_case(Core(engine=core.engine, settings=both, clock=core.clock))
    with Session(core.engine) as session:
        rows = session.exec(select(OutboxMessage.platform, OutboxMessage.destination).where(
            OutboxMessage.case_id == case_id,
            OutboxMessage.message_key == f"{case_id}:root")).all()
    assert rows == [(Platform.teams.value, CASES_CHANNEL)]


def test_a_case_is_not_opened_where_its_checklist_could_not_be_posted(teams: TeamsUser,
                                                                      core: Core) -> None:
    """An AOR with no channel on any platform the deployment delivers to (here a Teams-only
    deployment, and an AOR whose roster entry lacks `[aor.teams]`): the officer is told why at
    `notice open`, and a submitted form opens no case, so none is left without a thread."""
    from bot.messages import FormId, RefusalCode
    from tests.helpers import SUBJECT, entries

    _teams_only(core)
    with transaction(core.engine) as session:
        session.execute(delete(AorChannel).where(col(AorChannel.aor_id) == "HOU"))
    assert teams.say(OFFICER, "notice open").status_code == 200
    (told,) = [call.body for call in teams.fake.posts()]
    assert "HOU has no channel on teams" in str(told)
    assert "actions" not in str(told)  # no form offered
    teams_only = core.settings.model_copy(update={"platforms": (Platform.teams,)})
    outcome = Core(engine=core.engine, settings=teams_only, clock=core.clock).submit(
        actor=OFFICER, form=FormId.open_case, channel=CASES_CHANNEL,
                          values={"notice_type": "red_notice", "intended_use": "immigration",
                                  "extradition_pending": "no", **SUBJECT})
    assert not outcome.ok and outcome.refusal_code is RefusalCode.no_channel
    assert cases(core) == []
    assert [entry.action for entry in entries(core, kind="refusal")] == [
        "command.open", "form.open_case"]


def test_in_a_slack_and_teams_deployment_a_teams_conversation_is_no_slack_channel(
        core: Core) -> None:
    """An AOR with no channel at all falls back to where the case was opened: opened from a
    Teams conversation, that id would be queued to Slack as if it were a Slack channel (and
    fail there) and reach no Teams channel. Refused; opened from a Slack channel, it opens."""
    from bot.messages import FormId, RefusalCode
    from tests.helpers import SUBJECT

    _teams_only(core)
    with transaction(core.engine) as session:
        session.execute(delete(AorChannel).where(col(AorChannel.aor_id) == "HOU"))
    both = core.settings.model_copy(update={"platforms": (Platform.slack, Platform.teams)})
    mixed = Core(engine=core.engine, settings=both, clock=core.clock)
    values = {"notice_type": "red_notice", "intended_use": "immigration",
              "extradition_pending": "no", **SUBJECT}
    refused = mixed.submit(actor=OFFICER, form=FormId.open_case, channel=CASES_CHANNEL,
                           values=values)
    assert refused.refusal_code is RefusalCode.no_channel
    opened = mixed.submit(actor=OFFICER, form=FormId.open_case, channel="C0HOUSTON",
                          values=values)
    assert opened.ok and cases(core)[0].channel == "C0HOUSTON"
