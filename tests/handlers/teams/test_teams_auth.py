"""Every request to /api/messages carries a Bot Framework token that the SDK checks against the
cloud's OpenID keys (served on loopback): anything else is a 401 and writes nothing."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import jwt
import pytest

from bot.core.service import Core
from handlers.teams.keys import BotFrameworkOnly, KeysWithoutWaiting
from tests.handlers.teams.conftest import OIDS, TeamsUser
from tests.handlers.teams.fake_teams import APP_ID, activity, new_key
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


def test_a_token_from_any_entra_tenant_is_refused_before_any_key_is_fetched(
        teams: TeamsUser, core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK would take such a token down its Entra path, which fetched the keys of the
    tenant the token names, unverified, with a blocking call on the event loop: made-up
    tenants could stall a worker. Only the cloud's Bot Framework issuer gets that far."""
    fetched: list[str] = []

    def fetch(client: jwt.PyJWKClient) -> Any:
        fetched.append(client.uri)
        raise jwt.PyJWKClientConnectionError("no network in tests")

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch)
    before = len(entries(core))
    for issuer in ("https://sts.windows.net/{tid}/", "https://login.microsoftonline.com/{tid}/v2.0"):
        tid = str(uuid.uuid4())
        token = jwt.encode({"iss": issuer.format(tid=tid), "tid": tid, "aud": APP_ID,
                            "exp": int(time.time()) + 300}, new_key(), algorithm="RS256",
                           headers={"kid": "made-up"})
        assert teams.post(help_message(teams), token=token).status_code == 401
    assert fetched == []
    assert len(entries(core)) == before


def test_keys_are_fetched_off_the_event_loop_and_looked_up_on_it_without_a_fetch(
        teams: TeamsUser, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys not cached (none yet, or a key Microsoft has just rotated in) are fetched in a
    thread of their own; a token whose key is cached is checked on the loop with no fetch."""
    guard = teams.app.server._token_validator
    assert isinstance(guard, BotFrameworkOnly)
    monkeypatch.setattr(KeysWithoutWaiting, "REFETCH_SECONDS", 0.0)
    fetched_in: list[threading.Thread] = []
    fetch = guard.client.fetch_data

    def spy() -> Any:
        fetched_in.append(threading.current_thread())
        return fetch()

    monkeypatch.setattr(guard.client, "fetch_data", spy)
    assert teams.post(help_message(teams)).status_code == 200  # nothing cached yet: fetched
    assert teams.post(help_message(teams)).status_code == 200  # cached: nothing fetched
    rotated = teams.fake.mint(kid="rotated-in")  # not among the keys the fake serves
    assert teams.post(help_message(teams), token=rotated).status_code == 401
    assert len(fetched_in) == 2 and teams.client.loop.thread not in fetched_in


def test_a_fetch_for_one_token_holds_up_no_other_request(
        teams: TeamsUser, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a made-up key id has the keys fetched (from a slow login service), a request
    whose key is cached is answered: its lookup does not wait for that fetch. And made-up key
    ids do not each fetch again."""
    guard = teams.app.server._token_validator
    assert isinstance(guard, BotFrameworkOnly)
    assert teams.post(help_message(teams)).status_code == 200  # the keys are cached
    monkeypatch.setattr(KeysWithoutWaiting, "REFETCH_SECONDS", 0.0)
    fetching, release = threading.Event(), threading.Event()
    fetches: list[str] = []

    def slow_fetch() -> Any:
        fetches.append("fetch")
        fetching.set()
        release.wait(timeout=30)
        raise jwt.PyJWKClientConnectionError("the login service did not answer")

    monkeypatch.setattr(guard.client, "fetch_data", slow_fetch)
    said: dict[str, int] = {}

    def send(name: str, token: str) -> None:
        said[name] = teams.post(help_message(teams), token=token).status_code

    made_up = threading.Thread(target=send, args=("made_up", teams.fake.mint(kid="made-up")))
    made_up.start()
    assert fetching.wait(timeout=10)
    cached = threading.Thread(target=send, args=("cached", teams.fake.mint()))
    cached.start()
    cached.join(timeout=10)
    answered_meanwhile = not cached.is_alive() and made_up.is_alive()
    release.set()
    made_up.join(timeout=30)
    cached.join(timeout=30)
    assert answered_meanwhile and said == {"cached": 200, "made_up": 401}
    monkeypatch.setattr(KeysWithoutWaiting, "REFETCH_SECONDS", 30.0)
    assert teams.post(help_message(teams), token=teams.fake.mint(kid="made-up-too")
                      ).status_code == 401
    assert fetches == ["fetch"]  # the second made-up id, within 30 s, fetched nothing
