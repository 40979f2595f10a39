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
