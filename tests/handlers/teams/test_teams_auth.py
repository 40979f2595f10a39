"""Every request to /api/messages carries a Bot Framework token that the SDK checks against the
cloud's OpenID keys (served on loopback): anything else is a 401 and writes nothing."""

from __future__ import annotations

import pytest

from bot.core.service import Core
from tests.handlers.teams.conftest import OIDS, TeamsUser
from tests.handlers.teams.fake_teams import activity, new_key
from tests.helpers import OFFICER, entries


def help_message(teams: TeamsUser, service_url: str | None = None) -> dict[str, object]:
    return activity("message", object_id=OIDS[OFFICER], text="notice help",
                    service_url=service_url or teams.fake.url,
                    conversation=f"a:dm-{OIDS[OFFICER]}")


def test_a_signed_request_is_served(teams: TeamsUser, core: Core) -> None:
    before = len(entries(core))
    assert teams.post(help_message(teams)).status_code == 200
    assert len(entries(core)) > before  # the command was recorded
    replies = [c for c in teams.fake.posts() if OIDS[OFFICER] in c.path]
    assert replies and replies[-1].headers["Authorization"].startswith("Bearer ")


@pytest.mark.parametrize("case", ["unsigned", "wrong_key", "wrong_audience", "expired",
                                  "wrong_issuer", "wrong_serviceurl"])
def test_unauthenticated_requests_get_401_and_write_nothing(
        teams: TeamsUser, core: Core, case: str) -> None:
    fake = teams.fake
    tokens = {
        "wrong_key": lambda: fake.mint(key=new_key()),
        "wrong_audience": lambda: fake.mint(audience="someone-else"),
        "expired": lambda: fake.mint(expires_in=-3600),
        "wrong_issuer": lambda: fake.mint(issuer="https://api.botframework.us"),
        "wrong_serviceurl": lambda: fake.mint(service_url="https://evil.example/teams"),
    }
    before = len(entries(core))
    if case == "unsigned":
        response = teams.post(help_message(teams), auth=False)
    else:
        response = teams.post(help_message(teams), token=tokens[case]())
    assert response.status_code == 401
    assert len(entries(core)) == before
    assert teams.fake.posts() == []


def test_a_token_for_another_service_url_cannot_be_replayed_elsewhere(
        teams: TeamsUser, core: Core) -> None:
    before = len(entries(core))
    body = help_message(teams, service_url="https://smba.example/teams")
    assert teams.post(body, token=teams.fake.mint()).status_code == 401
    assert len(entries(core)) == before
