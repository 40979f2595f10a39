"""The `noticebot teams` worker as uvicorn runs it (`handlers.teams.cli:asgi`): its start-up
and stop, in process."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.service import Core
from handlers.teams import cli as teams_cli
from tests.conftest import TEST_KEY
from tests.handlers.teams.conftest import Client, Loop
from tests.handlers.teams.fake_teams import APP_ID, TENANT


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """The test process's own heap is left as it was found."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_teams_worker_freezes_what_start_up_built_then_serves(
        monkeypatch: pytest.MonkeyPatch, empty_cwd: Path, core: Core, database_url: str) -> None:
    # A full collection walked everything start-up built (modules, mappers, the SDK's models),
    # stalling every request in flight; frozen, it is never walked again.
    for name, value in {"NOTICEBOT_DATABASE_URL": database_url,
                        "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY,
                        "NOTICEBOT_TEAMS_CLIENT_ID": APP_ID, "NOTICEBOT_TEAMS_TENANT_ID": TENANT,
                        "NOTICEBOT_TEAMS_ALLOW_UNAUTHENTICATED": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NOTICEBOT_ENV", raising=False)
    web = teams_cli.asgi()
    assert gc.get_freeze_count() == 0  # built, not yet started
    loop = Loop()
    lifespan = web.router.lifespan_context(web)
    try:
        loop.run(lifespan.__aenter__())  # started: the SDK, the relay and the sweeps
        try:
            assert gc.get_freeze_count() > 10_000
            client = Client(web, loop)
            assert client.get("/healthz").json() == {"status": "ok"}
            client.close()
        finally:
            loop.run(lifespan.__aexit__(None, None, None))
    finally:
        loop.close()
