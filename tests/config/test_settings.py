from __future__ import annotations

import pytest

from config.settings import SettingsError, load_settings


def test_defaults_are_embedded_sqlite_and_port_3000(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: object) -> None:
    for name in ("NOTICEBOT_DATABASE_URL", "NOTICEBOT_PORT", "NOTICEBOT_ENV", "SLACK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.database_url == "sqlite:///noticebot.db"
    assert settings.port == 3000
    assert settings.slack_api_url == "https://slack.com/api/"


def test_environment_names_of_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTICEBOT_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("SLACK_API_URL", "https://slack-gov.com/api")
    monkeypatch.setenv("NOTICEBOT_WATCHLIST_COUNTRIES", "aa, bb")
    settings = load_settings(_env_file=None)
    assert settings.database_url.startswith("postgresql")
    assert settings.slack_api_url == "https://slack-gov.com/api/"
    assert settings.watchlist_countries == frozenset({"AA", "BB"})


def test_bad_database_url_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTICEBOT_DATABASE_URL", "mysql://x/y")
    with pytest.raises(SettingsError, match="NOTICEBOT_DATABASE_URL: unsupported database"):
        load_settings(_env_file=None)
    monkeypatch.setenv("NOTICEBOT_DATABASE_URL", "not a url")
    with pytest.raises(SettingsError, match="NOTICEBOT_DATABASE_URL"):
        load_settings(_env_file=None)


def test_placeholder_secret_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTICEBOT_ENV", "production")
    monkeypatch.setenv("NOTICEBOT_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-changeme")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "")
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    assert "SLACK_BOT_TOKEN looks like a placeholder" in str(error.value)
    assert "SLACK_SIGNING_SECRET is required" in str(error.value)


def test_bad_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTICEBOT_PORT", "70000")
    with pytest.raises(SettingsError, match="NOTICEBOT_PORT"):
        load_settings(_env_file=None)


def test_webhook_mode_needs_url_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTICEBOT_USNCB_CHANNEL", "webhook")
    monkeypatch.setenv("NOTICEBOT_USNCB_WEBHOOK_URL", "")
    monkeypatch.setenv("NOTICEBOT_USNCB_WEBHOOK_SECRET", "short")
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    assert "NOTICEBOT_USNCB_WEBHOOK_URL must be an http(s) URL" in str(error.value)
    assert "NOTICEBOT_USNCB_WEBHOOK_SECRET must be at least 16" in str(error.value)
    monkeypatch.setenv("NOTICEBOT_USNCB_CHANNEL", "carrier-pigeon")
    with pytest.raises(SettingsError, match="NOTICEBOT_USNCB_CHANNEL"):
        load_settings(_env_file=None)


GOOD_PRODUCTION = {
    "NOTICEBOT_ENV": "production",
    "NOTICEBOT_DATABASE_URL": "postgresql+psycopg://u@h/db",
    "NOTICEBOT_ENCRYPTION_KEYS": "lN0b2mE0QHk0dFf9qfXc3l2wM6Y7a1p4R5s8u9v0x2A=",
    "SLACK_BOT_TOKEN": "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
    "SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea2543",
    "SLACK_API_URL": "https://slack-gov.com/api/",
    "NOTICEBOT_USNCB_CHANNEL": "webhook",
    "NOTICEBOT_USNCB_WEBHOOK_URL": "https://liaison.agency.gov/usncb",
    "NOTICEBOT_USNCB_WEBHOOK_SECRET": "c9f0f895fb98ab9159f51fd0297e236d",
}


def production(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> str | None:
    """The settings error for production settings with `overrides`, or None if accepted."""
    for name, value in {**GOOD_PRODUCTION, **overrides}.items():
        monkeypatch.setenv(name, value)
    try:
        load_settings(_env_file=None)
    except SettingsError as error:
        return str(error)
    return None


def test_production_accepts_real_looking_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert production(monkeypatch) is None


@pytest.mark.parametrize("secret", ["secret", "test", "a", "<signing-secret>", "REPLACE_ME",
                                    "0123456789abcdef", "a" * 40, "ab" * 20, "xxx-" * 10])
def test_production_refuses_weak_signing_secrets(monkeypatch: pytest.MonkeyPatch,
                                                 secret: str) -> None:
    error = production(monkeypatch, SLACK_SIGNING_SECRET=secret)
    assert error is not None and "SLACK_SIGNING_SECRET" in error, error
    assert "SLACK_BOT_TOKEN" not in error  # each refusal names its own setting


@pytest.mark.parametrize("token", ["xoxb-...", "xoxb-…", "xoxb-", "secret", "xoxp-1-2-abc",
                                   "xoxb-1234-5678"])
def test_production_refuses_tokens_of_the_wrong_shape(monkeypatch: pytest.MonkeyPatch,
                                                      token: str) -> None:
    error = production(monkeypatch, SLACK_BOT_TOKEN=token)
    assert error is not None and "SLACK_BOT_TOKEN" in error, error


def test_production_requires_https_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    error = production(monkeypatch, SLACK_API_URL="http://slack.com/api/",
                       NOTICEBOT_USNCB_WEBHOOK_URL="http://liaison.agency.gov/usncb")
    assert error is not None
    assert "SLACK_API_URL must be an https:// URL" in error
    assert "NOTICEBOT_USNCB_WEBHOOK_URL must be an https:// URL" in error


def test_production_refuses_a_weak_webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    error = production(monkeypatch, NOTICEBOT_USNCB_WEBHOOK_SECRET="sixteen-chars-ok")
    assert error is not None and "NOTICEBOT_USNCB_WEBHOOK_SECRET is 16 characters" in error


def test_development_keeps_accepting_local_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert production(monkeypatch, NOTICEBOT_ENV="development", SLACK_SIGNING_SECRET="test",
                      SLACK_API_URL="http://127.0.0.1:9/api/", SLACK_BOT_TOKEN="xoxb-test",
                      NOTICEBOT_DATABASE_URL="sqlite:///x.db") is None


def test_production_checks_slack_only_when_slack_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # A console-only (or, next, Teams-only) deployment sets no Slack secret: nothing to check.
    assert production(monkeypatch, SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="",
                      SLACK_API_URL="http://127.0.0.1:9/api/") is None
    # Any one Slack secret puts Slack in use, and then every Slack check applies.
    error = production(monkeypatch, SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="",
                       SLACK_APP_TOKEN="xapp-1-A0-1-abc", SLACK_API_URL="http://x/api/")
    assert error is not None
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL", "SLACK_APP_TOKEN"):
        assert name in error, (name, error)


def test_production_checks_the_webhook_only_in_webhook_mode(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert production(monkeypatch, NOTICEBOT_USNCB_CHANNEL="manual",
                      NOTICEBOT_USNCB_WEBHOOK_SECRET="",
                      NOTICEBOT_USNCB_WEBHOOK_URL="") is None
