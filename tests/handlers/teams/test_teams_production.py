"""`noticebot teams` and a worker delivering to Teams in production: Slack's secrets are not
asked for (a Teams-only deployment has none), Teams' are, each refusal naming its setting."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from config.platforms import Platform
from config.settings import Settings
from handlers.cli import main
from handlers.teams import cli as teams_cli
from tests.conftest import TEST_KEY
from tests.handlers.teams.fake_teams import APP_ID, TENANT

TEAMS = {"NOTICEBOT_TEAMS_CLIENT_ID": APP_ID, "NOTICEBOT_TEAMS_TENANT_ID": TENANT,
         "NOTICEBOT_TEAMS_CLIENT_SECRET": "Qx8~aV3.kLm9_Tz2pR7sW4yB6nC1dF5gH0jE",
         "NOTICEBOT_PLATFORMS": "teams"}


def _settings() -> Settings:
    """What `noticebot teams` starts with, as within the command."""
    with click.Context(main):
        return teams_cli._settings()


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, empty_cwd: Path) -> pytest.MonkeyPatch:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", *TEAMS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTICEBOT_ENV", "production")
    monkeypatch.setenv("NOTICEBOT_DATABASE_URL",
                       "postgresql+psycopg://noticebot@db.agency.invalid:5432/noticebot")
    monkeypatch.setenv("NOTICEBOT_ENCRYPTION_KEYS", TEST_KEY)
    return monkeypatch


def test_teams_in_production_demands_the_teams_secrets_not_slacks(
        production: pytest.MonkeyPatch) -> None:
    with pytest.raises(click.ClickException) as refused:
        _settings()
    said = refused.value.message
    for name in ("NOTICEBOT_TEAMS_CLIENT_ID", "NOTICEBOT_TEAMS_TENANT_ID",
                 "NOTICEBOT_TEAMS_CLIENT_SECRET"):
        assert name in said
    assert "SLACK" not in said
    for name, value in TEAMS.items():
        production.setenv(name, value)
    settings = _settings()  # no Slack secret set, and none asked for
    assert not settings.slack_enabled


def test_a_placeholder_teams_secret_is_refused_in_production(
        production: pytest.MonkeyPatch) -> None:
    for name, value in {**TEAMS, "NOTICEBOT_TEAMS_CLIENT_SECRET": "changeme"}.items():
        production.setenv(name, value)
    with pytest.raises(click.ClickException, match="NOTICEBOT_TEAMS_CLIENT_SECRET looks like"):
        _settings()


def test_a_worker_delivering_to_teams_demands_the_teams_secrets(
        production: pytest.MonkeyPatch) -> None:
    production.setenv("NOTICEBOT_PLATFORMS", "teams")
    result = CliRunner().invoke(main, ["worker", "--metrics-port", "0"])
    assert result.exit_code != 0
    assert "NOTICEBOT_TEAMS_CLIENT_ID" in result.output and "SLACK" not in result.output


def test_teams_refuses_to_start_when_no_message_would_be_queued_for_teams(
        production: pytest.MonkeyPatch) -> None:
    for name, value in TEAMS.items():
        production.setenv(name, value)
    production.setenv("NOTICEBOT_PLATFORMS", "slack")
    with pytest.raises(click.ClickException, match="NOTICEBOT_PLATFORMS is 'slack': add teams"):
        _settings()
    production.setenv("NOTICEBOT_PLATFORMS", "slack,teams")
    assert _settings().platforms == (Platform.slack, Platform.teams)
