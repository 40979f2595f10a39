"""The one typed settings object. Built by `load_settings()`; never a module-level instance."""

from __future__ import annotations

import os
import re
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config.platforms import Platform
from config.teams import TeamsSettings

PLACEHOLDER_MARKERS = ("changeme", "change-me", "placeholder", "xxx", "your-", "example", "dummy")
SUPPORTED_DRIVERS = ("sqlite", "postgresql")


class UsncbChannelKind(StrEnum):
    manual = "manual"
    webhook = "webhook"


class Environment(StrEnum):
    development = "development"
    production = "production"


class LogFormat(StrEnum):
    json = "json"
    text = "text"


class LogLevel(StrEnum):
    debug = "DEBUG"
    info = "INFO"
    warning = "WARNING"
    error = "ERROR"


class SiemSink(StrEnum):
    off = "off"
    stdout = "stdout"
    syslog = "syslog"


class SettingsError(Exception):
    """Settings that cannot be used; the message names each offending setting."""


# Values seen in templates, tutorials and test files, compared without case and without the
# brackets or quotes around them (`<signing-secret>`, `"REPLACE_ME"`).
KNOWN_PLACEHOLDERS = frozenset({
    "secret", "test", "testing", "password", "passw0rd", "admin", "token", "key", "none",
    "null", "todo", "tbd", "fixme", "replace_me", "replace-me", "replaceme", "replace",
    "signing-secret", "signing_secret", "slack-signing-secret", "bot-token", "xoxb",
    "insert-secret-here", "default", "demo", "sample", "foo", "bar", "foobar", "abc", "123",
    "1234", "12345", "123456",
})
MIN_SECRET_LENGTH = 32  # Slack signing secrets are 32 hex digits; HMAC keys no shorter
MIN_SECRET_KINDS = 8  # distinct characters: "aaaa…" or "0101…" is not a secret
# xoxb-<team>-<bot>-<random>, the shape Slack issues bot tokens in (GovSlack too).
BOT_TOKEN = re.compile(r"xoxb-[0-9]+-[0-9]+-[0-9A-Za-z]{16,}")
APP_TOKEN = re.compile(r"xapp-[0-9]+-[0-9A-Za-z]+-[0-9]+-[0-9a-f]{16,}")


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    core = lowered.strip("<>{}[]()'\"` ")
    if core in KNOWN_PLACEHOLDERS or "..." in value or "…" in value:
        return True
    if core and len(set(core)) == 1:  # "a", "xxxxxxxx"
        return True
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def secret_problem(value: str, *, min_length: int = MIN_SECRET_LENGTH) -> str | None:
    """Why `value` cannot be a production secret, or None (takes the plain value)."""
    if not value:
        return "is required in production"
    if _looks_like_placeholder(value):
        return "looks like a placeholder, not a real secret"
    if len(value) < min_length:
        return f"is {len(value)} characters long; a real secret has at least {min_length}"
    if len(set(value)) < MIN_SECRET_KINDS:
        return "repeats too few characters to be a real secret"
    return None


def token_problem(value: str, shape: re.Pattern[str], example: str) -> str | None:
    """Why `value` cannot be a production token of this shape, or None."""
    if not value:
        return "is required in production"
    if _looks_like_placeholder(value):
        return "looks like a placeholder, not a real secret"
    if not shape.fullmatch(value):
        return f"is not a token of the expected shape ({example})"
    return None


def https_problem(value: str) -> str | None:
    """Why `value` cannot be a production endpoint: plain http would carry tokens, secrets
    and signed requests in the clear."""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        return "must be an https:// URL in production"
    if _looks_like_placeholder(parts.hostname):
        return "looks like a placeholder host"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Secrets are SecretStr: never shown by repr() or a log line; read with .get_secret_value().
    # Grouped per integration; the environment variable names are the product's contract and
    # never change (SETTING_NAMES below maps each field to its variable).

    # --- The workflow and its database ----------------------------------------------------
    # Not in repr(): a PostgreSQL URL may carry a password (see `safe_database_url`).
    database_url: str = Field(
        default="sqlite:///noticebot.db", repr=False,
        validation_alias=AliasChoices("NOTICEBOT_DATABASE_URL", "database_url"),
    )
    port: int = Field(default=3000, ge=1, le=65535, validation_alias="NOTICEBOT_PORT")
    environment: Environment = Field(
        default=Environment.development, validation_alias="NOTICEBOT_ENV"
    )
    training_validity_days: int = Field(
        default=365, ge=1, validation_alias="NOTICEBOT_TRAINING_VALIDITY_DAYS"
    )
    # What a justification the directive asks for must at least be (bot.core.forms).
    justification_min_chars: int = Field(
        default=20, ge=1, validation_alias="NOTICEBOT_JUSTIFICATION_MIN_CHARS"
    )
    justification_min_words: int = Field(
        default=4, ge=1, validation_alias="NOTICEBOT_JUSTIFICATION_MIN_WORDS"
    )
    # Confidential: ISO country codes whose notices get the watch-list risk indicator.
    # Used only inside the core's review logic, never rendered into a message.
    watchlist_countries: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), validation_alias="NOTICEBOT_WATCHLIST_COUNTRIES"
    )
    # Notices published before this date predate INTERPOL's 2016-2017 reforms (a risk indicator).
    reform_cutoff: str = Field(default="2017-01-01", validation_alias="NOTICEBOT_REFORM_CUTOFF")
    sweep_seconds: int = Field(default=60, ge=5, le=3600,
                               validation_alias="NOTICEBOT_SWEEP_SECONDS")
    extra_holidays: Annotated[frozenset[date], NoDecode] = Field(
        default=frozenset(), validation_alias="NOTICEBOT_EXTRA_HOLIDAYS")
    # Approvals: the approver is reminded after N business days, then it escalates.
    approval_remind_after: int = Field(default=1, ge=1, le=30,
                                       validation_alias="NOTICEBOT_APPROVAL_REMIND_AFTER_DAYS")
    approval_escalate_after: int = Field(default=2, ge=1, le=50,
                                         validation_alias="NOTICEBOT_APPROVAL_ESCALATE_AFTER")
    training_reminder_days: Annotated[tuple[int, ...], NoDecode] = Field(
        default=(30, 7, 1), validation_alias="NOTICEBOT_TRAINING_REMINDER_DAYS")
    # A ready case whose use is not recorded: the officer is reminded every N days, and after
    # M reminders the AOR's FRO is told too (and may close it).
    outcome_remind_days: int = Field(default=30, ge=1, le=365,
                                     validation_alias="NOTICEBOT_OUTCOME_REMIND_DAYS")
    outcome_escalate_after: int = Field(default=2, ge=1, le=20,
                                        validation_alias="NOTICEBOT_OUTCOME_ESCALATE_AFTER")

    # The platforms this deployment delivers to: an outbox row is written for each one the
    # destination is on (comma-separated; the console delivers to `console`).
    platforms: Annotated[tuple[Platform, ...], NoDecode] = Field(
        default=(Platform.slack,), min_length=1, validation_alias="NOTICEBOT_PLATFORMS")

    # --- Slack (in use once any of its secrets is set) ------------------------------------
    slack_bot_token: SecretStr = Field(default=SecretStr(""), validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr = Field(default=SecretStr(""),
                                            validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr = Field(default=SecretStr(""), validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")

    # --- USNCB request channel ------------------------------------------------------------
    # How requests reach the USNCB: the officer sends them (manual) or noticebot does (webhook).
    usncb_channel: UsncbChannelKind = Field(
        default=UsncbChannelKind.manual, validation_alias="NOTICEBOT_USNCB_CHANNEL"
    )
    usncb_webhook_url: str = Field(default="", validation_alias="NOTICEBOT_USNCB_WEBHOOK_URL")
    usncb_webhook_secret: SecretStr = Field(
        default=SecretStr(""), validation_alias="NOTICEBOT_USNCB_WEBHOOK_SECRET"
    )
    usncb_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, validation_alias="NOTICEBOT_USNCB_TIMEOUT_SECONDS"
    )
    usncb_max_attempts: int = Field(
        default=4, ge=1, le=10, validation_alias="NOTICEBOT_USNCB_MAX_ATTEMPTS"
    )
    # mTLS to the liaison system: a CA bundle to trust instead of the system's, and the client
    # certificate (PEM) and its key that noticebot presents.
    usncb_ca_bundle: str = Field(default="", validation_alias="NOTICEBOT_USNCB_CA_BUNDLE")
    usncb_client_cert: str = Field(default="", validation_alias="NOTICEBOT_USNCB_CLIENT_CERT")
    usncb_client_key: str = Field(default="", validation_alias="NOTICEBOT_USNCB_CLIENT_KEY")
    # Reminders and escalations (business days exclude weekends and federal holidays).
    usncb_remind_every: int = Field(default=2, ge=1, le=30,
                                    validation_alias="NOTICEBOT_USNCB_REMIND_EVERY_DAYS")
    usncb_escalate_after: int = Field(default=3, ge=1, le=50,
                                      validation_alias="NOTICEBOT_USNCB_ESCALATE_AFTER")
    usncb_escalate_next_after: int = Field(
        default=5, ge=1, le=50, validation_alias="NOTICEBOT_USNCB_ESCALATE_NEXT_AFTER")

    # --- Records (§6): encryption at rest, retention, heads and signed checkpoints --------
    # Fernet keys, newest first: the first encrypts subject details and record content.
    encryption_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), validation_alias="NOTICEBOT_ENCRYPTION_KEYS"
    )
    # The retention schedule (TOML); without one every record is kept indefinitely (§6).
    retention_file: str = Field(default="", validation_alias="NOTICEBOT_RETENTION_FILE")
    # Where the chain's head is published outside the database, and how often (hours).
    heads_file: str = Field(default="", validation_alias="NOTICEBOT_HEADS_FILE")
    heads_hours: int = Field(default=24, ge=1, le=168, validation_alias="NOTICEBOT_HEADS_HOURS")
    # Signed checkpoints of the record's Merkle tree: the Ed25519 private key (PEM, a file or
    # a mounted secret, never in the database), the public keys verification accepts
    # ("ed25519:<base64>", comma-separated; the key file's own is accepted too), and the
    # channel their short form is posted to (none: not posted).
    checkpoint_key_file: str = Field(default="", validation_alias="NOTICEBOT_CHECKPOINT_KEY_FILE")
    checkpoint_public_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="NOTICEBOT_CHECKPOINT_PUBLIC_KEYS")
    records_channel: str = Field(default="", validation_alias="NOTICEBOT_RECORDS_CHANNEL")

    # --- Operations -----------------------------------------------------------------------
    # Logs to stdout (JSON for collectors, text for people), the record's entries
    # streamed to a SIEM, and refusing to start unless OpenSSL runs in FIPS mode.
    log_level: LogLevel = Field(default=LogLevel.info, validation_alias="NOTICEBOT_LOG_LEVEL")
    log_format: LogFormat = Field(default=LogFormat.json, validation_alias="NOTICEBOT_LOG_FORMAT")
    siem: SiemSink = Field(default=SiemSink.off, validation_alias="NOTICEBOT_SIEM")
    # host:port (UDP) or a socket path such as /dev/log, for NOTICEBOT_SIEM=syslog.
    siem_syslog_address: str = Field(default="/dev/log",
                                     validation_alias="NOTICEBOT_SIEM_SYSLOG_ADDRESS")
    require_fips: bool = Field(default=False, validation_alias="NOTICEBOT_REQUIRE_FIPS")
    # Roster user -> the operating-system accounts that may act as them with `--as` on the
    # command line ("U0REC1=alice,U0REC1=carol"). Empty: `--as` is taken as given (and the
    # account is recorded either way).
    cli_operators: Annotated[dict[str, frozenset[str]], NoDecode] = Field(
        default_factory=dict, validation_alias="NOTICEBOT_CLI_OPERATORS")
    # Microsoft Teams: its own settings class, read from NOTICEBOT_TEAMS_* (config/teams.py).
    teams: TeamsSettings = Field(default_factory=TeamsSettings, exclude=True)

    @field_validator("watchlist_countries", mode="before")
    @classmethod
    def _split_countries(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(c.strip().upper() for c in value.split(",") if c.strip())
        return value

    @field_validator("training_reminder_days", mode="before")
    @classmethod
    def _split_days(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(sorted({int(v) for v in value.split(",") if v.strip()}, reverse=True))
        return value

    @field_validator("extra_holidays", mode="before")
    @classmethod
    def _split_holidays(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(date.fromisoformat(v.strip()) for v in value.split(",") if v.strip())
        return value

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("checkpoint_public_keys", mode="before")
    @classmethod
    def _split_public_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _check_keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        # The key's shape only (storage/vault.py uses the keys); config sits below storage.
        try:
            for key in value:
                Fernet(key.get_secret_value().encode())
        except (ValueError, TypeError):
            raise ValueError("each key must be a Fernet key (noticebot keys generate)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from exc
        backend = url.get_backend_name()
        if backend not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"unsupported database '{backend}'; use sqlite:///FILE or postgresql+psycopg://..."
            )
        return value

    @field_validator("platforms", mode="before")
    @classmethod
    def _split_platforms(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return tuple(dict.fromkeys(p.strip().lower() for p in value.split(",") if p.strip()))

    @field_validator("cli_operators", mode="before")
    @classmethod
    def _split_operators(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        bindings: dict[str, set[str]] = {}
        for pair in filter(None, (p.strip() for p in value.split(","))):
            user, sep, account = pair.partition("=")
            if not sep or not user.strip() or not account.strip():
                raise ValueError(f"{pair!r} is not ROSTER_USER=OS_ACCOUNT")
            bindings.setdefault(user.strip().upper(), set()).add(account.strip())
        return {user: frozenset(accounts) for user, accounts in bindings.items()}

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("usncb_ca_bundle", "usncb_client_cert", "usncb_client_key")
    @classmethod
    def _readable_file(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @model_validator(mode="after")
    def _key_goes_with_cert(self) -> Settings:
        if self.usncb_client_key and not self.usncb_client_cert:
            raise ValueError("NOTICEBOT_USNCB_CLIENT_KEY needs NOTICEBOT_USNCB_CLIENT_CERT")
        return self

    @field_validator("slack_api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _webhook_needs_its_endpoint(self) -> Settings:
        if self.usncb_channel is not UsncbChannelKind.webhook:
            return self
        problems = []
        if not self.usncb_webhook_url.startswith(("https://", "http://")):
            problems.append("NOTICEBOT_USNCB_WEBHOOK_URL must be an http(s) URL in webhook mode")
        if len(self.usncb_webhook_secret.get_secret_value()) < 16:
            problems.append("NOTICEBOT_USNCB_WEBHOOK_SECRET must be at least 16 characters in "
                            "webhook mode")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        """Production refuses weak settings, each refusal naming its setting: https
        endpoints, tokens of Slack's shape, secrets of real length, no known placeholders.
        An integration is checked only when it is in use (Slack: any of its secrets is set;
        the USNCB webhook: NOTICEBOT_USNCB_CHANNEL=webhook)."""
        if self.environment is not Environment.production:
            return self
        checks = [*self._slack_checks(), *self._usncb_checks()]
        problems = [f"{name} {problem}" for name, problem in checks if problem is not None]
        if make_url(self.database_url).get_backend_name() == "sqlite":
            problems.append("NOTICEBOT_DATABASE_URL must be PostgreSQL in production")
        if not self.encryption_keys:
            problems.append("NOTICEBOT_ENCRYPTION_KEYS is required in production (subject "
                            "details are encrypted at rest)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def slack_enabled(self) -> bool:
        """Slack is in use once any of its secrets is set (a console-only or Teams-only
        deployment sets none)."""
        return any(secret.get_secret_value() for secret in (
            self.slack_bot_token, self.slack_signing_secret, self.slack_app_token))

    def _slack_checks(self) -> list[tuple[str, str | None]]:
        if not self.slack_enabled:
            return []
        bot_token, app_token = (self.slack_bot_token.get_secret_value(),
                                self.slack_app_token.get_secret_value())
        checks: list[tuple[str, str | None]] = [
            ("SLACK_BOT_TOKEN", token_problem(bot_token, BOT_TOKEN, "xoxb-<team>-<bot>-<secret>")),
            ("SLACK_SIGNING_SECRET", secret_problem(self.slack_signing_secret.get_secret_value())),
            ("SLACK_API_URL", https_problem(self.slack_api_url)),
        ]
        if app_token:  # only Socket Mode needs it
            checks.append(("SLACK_APP_TOKEN", token_problem(
                app_token, APP_TOKEN, "xapp-1-<app>-<number>-<secret>")))
        return checks

    def _usncb_checks(self) -> list[tuple[str, str | None]]:
        if self.usncb_channel is not UsncbChannelKind.webhook:
            return []
        return [
            ("NOTICEBOT_USNCB_WEBHOOK_SECRET",
             secret_problem(self.usncb_webhook_secret.get_secret_value())),
            ("NOTICEBOT_USNCB_WEBHOOK_URL", https_problem(self.usncb_webhook_url)),
        ]

    @property
    def vault_keys(self) -> tuple[str, ...]:
        """The encryption keys in clear, for the vault only."""
        return tuple(key.get_secret_value() for key in self.encryption_keys)

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, fit for a log line or an error."""
        return safe_url(self.database_url)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


SECRETS_DIR_ENV = "NOTICEBOT_SECRETS_DIR"


def env_name(field: str) -> str:
    """The environment variable a settings field is read from (its validation alias)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    return alias if isinstance(alias, str) else field


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and `.env`), turning validation errors into one
    readable message that names each setting by its environment variable.

    With NOTICEBOT_SECRETS_DIR (e.g. /run/secrets) each setting can also come from a file in
    that folder named like its variable (SLACK_BOT_TOKEN, NOTICEBOT_ENCRYPTION_KEYS...), as
    Docker and Kubernetes mount secrets; an environment variable still wins over a file."""
    secrets_dir = os.environ.get(SECRETS_DIR_ENV, "").strip()
    if secrets_dir:
        if not Path(secrets_dir).is_dir():
            raise SettingsError(f"invalid settings:\n  {SECRETS_DIR_ENV}: {secrets_dir} is not "
                                "a folder")
        overrides.setdefault("_secrets_dir", secrets_dir)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "settings"
            name = env_name(field)
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
