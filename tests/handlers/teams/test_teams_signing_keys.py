"""The SDK fetches the cloud's signing keys inside request handling, on the event loop, once
its cached copy has expired. `noticebot teams` fetches them in a thread of its own before
then, so a request finds them cached and never waits on the login service."""

from __future__ import annotations

import time
from typing import Any

from bot.messages import ActionId, ActionValue
from handlers.teams.keys import SigningKeys
from tests.handlers.teams.conftest import TeamsUser
from tests.helpers import OFFICER

LIFESPAN = 0.3  # seconds the SDK keeps its copy (5 minutes in production)


def _click(teams: TeamsUser) -> None:
    answered = teams.execute(OFFICER, ActionValue(ActionId.show_case, "HOU-2026-9999").to_dict())
    assert answered.status_code == 200, answered.text


def test_keys_refreshed_off_the_loop_are_what_requests_use(teams: TeamsUser) -> None:
    keys = SigningKeys(teams.app)
    [client] = keys.clients  # the pinned SDK's own key client, found
    assert client.jwk_set_cache is not None
    client.jwk_set_cache.lifespan = LIFESPAN
    keys.refresh()
    fetched = teams.fake.key_fetches
    _click(teams)
    assert teams.fake.key_fetches == fetched  # cached: the request fetched nothing

    time.sleep(LIFESPAN + 0.1)  # the copy has expired ...
    keys.refresh()  # ... and is fetched again off the loop
    assert teams.fake.key_fetches == fetched + 1
    _click(teams)
    assert teams.fake.key_fetches == fetched + 1

    time.sleep(LIFESPAN + 0.1)  # without the refresh, the request itself fetches them
    _click(teams)
    assert teams.fake.key_fetches == fetched + 2


def test_the_keeper_fetches_before_the_copy_expires(teams: TeamsUser) -> None:
    keys = SigningKeys(teams.app)
    [client] = keys.clients
    assert client.jwk_set_cache is not None
    client.jwk_set_cache.lifespan = LIFESPAN
    assert keys.interval == LIFESPAN / 2
    before = teams.fake.key_fetches
    stop = keys.keep_fresh()
    try:
        time.sleep(LIFESPAN * 2)
    finally:
        stop.set()
    assert teams.fake.key_fetches >= before + 2


def test_a_fetch_that_fails_in_any_way_is_logged_and_leaves_the_keeper_running(
        teams: TeamsUser, caplog: Any) -> None:
    keys = SigningKeys(teams.app)
    [client] = keys.clients

    def broken(refresh: bool = False) -> Any:
        raise ValueError("Expecting value: line 1 column 1 (char 0)")  # a proxy's HTML page

    client.get_jwk_set = broken  # type: ignore[method-assign]
    keys.refresh()  # no exception escapes: start-up and the keeper thread go on
    assert "could not fetch the Teams signing keys: ValueError" in caplog.text
