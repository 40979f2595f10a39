"""Secrets are never printed and can be mounted as files (/run/secrets)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings
from tests.conftest import TEST_KEY

TOKEN = "xoxb-1111-2222-abcdefabcdefabcdef"
SIGNING = "5f1d2c3b4a5968778695a4b3c2d1e0f0"
WEBHOOK = "liaison-shared-secret-0123456789"
PASSWORD = "pg-pass-7d1c9e"
ENV = Path(__file__).resolve().parents[2] / ".env.example"


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "NOTICEBOT_ENCRYPTION_KEYS",
                 "NOTICEBOT_USNCB_WEBHOOK_SECRET", "NOTICEBOT_DATABASE_URL",
                 "NOTICEBOT_SECRETS_DIR", "NOTICEBOT_USNCB_CHANNEL"):
        monkeypatch.delenv(name, raising=False)


def test_repr_and_str_of_settings_never_show_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch)
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-secretapptoken")
    monkeypatch.setenv("NOTICEBOT_ENCRYPTION_KEYS", TEST_KEY)
    monkeypatch.setenv("NOTICEBOT_USNCB_CHANNEL", "webhook")
    monkeypatch.setenv("NOTICEBOT_USNCB_WEBHOOK_URL", "https://liaison.example.gov/in")
    monkeypatch.setenv("NOTICEBOT_USNCB_WEBHOOK_SECRET", WEBHOOK)
    monkeypatch.setenv("NOTICEBOT_DATABASE_URL", f"postgresql+psycopg://bot:{PASSWORD}@db/nb")
    settings = load_settings(_env_file=None)
    shown = repr(settings) + str(settings)
    for secret in (TOKEN, SIGNING, "secretapptoken", TEST_KEY, WEBHOOK, PASSWORD):
        assert secret not in shown
    # ... while the code that needs them still gets them.
    assert settings.slack_bot_token.get_secret_value() == TOKEN
    assert settings.vault_keys == (TEST_KEY,)
    assert PASSWORD not in settings.safe_database_url
    assert settings.safe_database_url.startswith("postgresql+psycopg://bot:***@db/nb")


def test_secrets_come_from_files_in_the_secrets_dir(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    _clear(monkeypatch)
    (tmp_path / "SLACK_BOT_TOKEN").write_text(TOKEN + "\n")
    (tmp_path / "SLACK_SIGNING_SECRET").write_text(SIGNING)
    (tmp_path / "NOTICEBOT_ENCRYPTION_KEYS").write_text(TEST_KEY + "\n")
    monkeypatch.setenv("NOTICEBOT_SECRETS_DIR", str(tmp_path))
    settings = load_settings(_env_file=None)
    assert settings.slack_bot_token.get_secret_value() == TOKEN
    assert settings.slack_signing_secret.get_secret_value() == SIGNING
    assert settings.vault_keys == (TEST_KEY,)
    # An environment variable still wins over a file.
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "from-the-environment")
    assert load_settings(_env_file=None).slack_signing_secret.get_secret_value() \
        == "from-the-environment"


def test_a_missing_secrets_dir_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear(monkeypatch)
    monkeypatch.setenv("NOTICEBOT_SECRETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match=r"NOTICEBOT_SECRETS_DIR: .*absent is not a folder"):
        load_settings(_env_file=None)


def test_env_example_lists_every_setting_with_its_meaning() -> None:
    from config.settings import Settings

    text = ENV.read_text("utf-8")
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    expected = {str(field.validation_alias) if isinstance(field.validation_alias, str)
                else "NOTICEBOT_DATABASE_URL" for field in Settings.model_fields.values()}
    expected.add("NOTICEBOT_SECRETS_DIR")
    assert expected - names == set()
    # Each setting has a comment line right above it that says what it is for.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match and match.group(1) in expected:
            assert i > 0 and lines[i - 1].startswith("#") and not re.match(
                r"^#?\s*[A-Z][A-Z0-9_]+=", lines[i - 1]), f"{match.group(1)} has no comment"
