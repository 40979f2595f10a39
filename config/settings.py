"""The one typed settings object. Built by `load_settings()`; never a module-level instance."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PLACEHOLDER_MARKERS = ("changeme", "change-me", "placeholder", "xxx", "your-", "example", "dummy")
SUPPORTED_DRIVERS = ("sqlite", "postgresql")


class UsncbChannelKind(StrEnum):
    manual = "manual"
    webhook = "webhook"


class Environment(StrEnum):
    development = "development"
    production = "production"


class SettingsError(Exception):
    """Settings that cannot be used; the message names each offending setting."""


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    slack_bot_token: str = Field(default="", validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str = Field(default="", validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: str = Field(default="", validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    database_url: str = Field(
        default="sqlite:///noticebot.db",
        validation_alias=AliasChoices("NOTICEBOT_DATABASE_URL", "database_url"),
    )
    port: int = Field(default=3000, ge=1, le=65535, validation_alias="NOTICEBOT_PORT")
    environment: Environment = Field(
        default=Environment.development, validation_alias="NOTICEBOT_ENV"
    )
    training_validity_days: int = Field(
        default=365, ge=1, validation_alias="NOTICEBOT_TRAINING_VALIDITY_DAYS"
    )
    # Confidential: ISO country codes whose notices get the watch-list risk indicator.
    # Used only inside the core's review logic, never rendered into a message.
    watchlist_countries: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), validation_alias="NOTICEBOT_WATCHLIST_COUNTRIES"
    )
    # Notices published before this date predate INTERPOL's 2016-2017 reforms (SPEC §3).
    reform_cutoff: str = Field(default="2017-01-01", validation_alias="NOTICEBOT_REFORM_CUTOFF")

    # How requests reach the USNCB: the officer sends them (manual) or noticebot does (webhook).
    usncb_channel: UsncbChannelKind = Field(
        default=UsncbChannelKind.manual, validation_alias="NOTICEBOT_USNCB_CHANNEL"
    )
    usncb_webhook_url: str = Field(default="", validation_alias="NOTICEBOT_USNCB_WEBHOOK_URL")
    usncb_webhook_secret: str = Field(
        default="", validation_alias="NOTICEBOT_USNCB_WEBHOOK_SECRET"
    )
    usncb_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, validation_alias="NOTICEBOT_USNCB_TIMEOUT_SECONDS"
    )
    # Fernet keys, newest first: the first encrypts subject details and record content.
    encryption_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="NOTICEBOT_ENCRYPTION_KEYS"
    )
    # The retention schedule (TOML); without one every record is kept indefinitely (§6).
    retention_file: str = Field(default="", validation_alias="NOTICEBOT_RETENTION_FILE")
    # Reminders and escalations (business days exclude weekends and federal holidays).
    usncb_remind_every: int = Field(default=2, ge=1, le=30,
                                    validation_alias="NOTICEBOT_USNCB_REMIND_EVERY_DAYS")
    usncb_escalate_after: int = Field(default=3, ge=1, le=50,
                                      validation_alias="NOTICEBOT_USNCB_ESCALATE_AFTER")
    usncb_escalate_next_after: int = Field(
        default=5, ge=1, le=50, validation_alias="NOTICEBOT_USNCB_ESCALATE_NEXT_AFTER")
    approval_remind_after: int = Field(default=1, ge=1, le=30,
                                       validation_alias="NOTICEBOT_APPROVAL_REMIND_AFTER_DAYS")
    approval_escalate_after: int = Field(default=2, ge=1, le=50,
                                         validation_alias="NOTICEBOT_APPROVAL_ESCALATE_AFTER")
    training_reminder_days: Annotated[tuple[int, ...], NoDecode] = Field(
        default=(30, 7, 1), validation_alias="NOTICEBOT_TRAINING_REMINDER_DAYS")
    extra_holidays: Annotated[frozenset[date], NoDecode] = Field(
        default=frozenset(), validation_alias="NOTICEBOT_EXTRA_HOLIDAYS")
    sweep_seconds: int = Field(default=60, ge=5, le=3600,
                               validation_alias="NOTICEBOT_SWEEP_SECONDS")
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
    # A ready case whose use is not recorded: the officer is reminded every N days, and after
    # M reminders the AOR's FRO is told too (and may close it).
    outcome_remind_days: int = Field(default=30, ge=1, le=365,
                                     validation_alias="NOTICEBOT_OUTCOME_REMIND_DAYS")
    outcome_escalate_after: int = Field(default=2, ge=1, le=20,
                                        validation_alias="NOTICEBOT_OUTCOME_ESCALATE_AFTER")
    usncb_max_attempts: int = Field(
        default=4, ge=1, le=10, validation_alias="NOTICEBOT_USNCB_MAX_ATTEMPTS"
    )

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
    def _check_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from storage.vault import Vault, VaultError

        try:
            Vault(value)
        except VaultError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None
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
        if len(self.usncb_webhook_secret) < 16:
            problems.append("NOTICEBOT_USNCB_WEBHOOK_SECRET must be at least 16 characters in "
                            "webhook mode")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.environment is not Environment.production:
            return self
        problems = []
        for name, value in (
            ("SLACK_BOT_TOKEN", self.slack_bot_token),
            ("SLACK_SIGNING_SECRET", self.slack_signing_secret),
            *((("NOTICEBOT_USNCB_WEBHOOK_SECRET", self.usncb_webhook_secret),)
              if self.usncb_channel is UsncbChannelKind.webhook else ()),
        ):
            if not value:
                problems.append(f"{name} is required in production")
            elif _looks_like_placeholder(value):
                problems.append(f"{name} looks like a placeholder, not a real secret")
        if make_url(self.database_url).get_backend_name() == "sqlite":
            problems.append("NOTICEBOT_DATABASE_URL must be PostgreSQL in production")
        if not self.encryption_keys:
            problems.append("NOTICEBOT_ENCRYPTION_KEYS is required in production (subject "
                            "details are encrypted at rest)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.database_url).get_backend_name() == "sqlite"


_ENV_NAMES = {
    "database_url": "NOTICEBOT_DATABASE_URL",
    "slack_api_url": "SLACK_API_URL",
    "port": "NOTICEBOT_PORT",
    "environment": "NOTICEBOT_ENV",
    "training_validity_days": "NOTICEBOT_TRAINING_VALIDITY_DAYS",
    "watchlist_countries": "NOTICEBOT_WATCHLIST_COUNTRIES",
    "usncb_channel": "NOTICEBOT_USNCB_CHANNEL",
    "usncb_timeout_seconds": "NOTICEBOT_USNCB_TIMEOUT_SECONDS",
    "usncb_max_attempts": "NOTICEBOT_USNCB_MAX_ATTEMPTS",
    "encryption_keys": "NOTICEBOT_ENCRYPTION_KEYS",
    "retention_file": "NOTICEBOT_RETENTION_FILE",
    "usncb_remind_every": "NOTICEBOT_USNCB_REMIND_EVERY_DAYS",
    "usncb_escalate_after": "NOTICEBOT_USNCB_ESCALATE_AFTER",
    "usncb_escalate_next_after": "NOTICEBOT_USNCB_ESCALATE_NEXT_AFTER",
    "approval_remind_after": "NOTICEBOT_APPROVAL_REMIND_AFTER_DAYS",
    "approval_escalate_after": "NOTICEBOT_APPROVAL_ESCALATE_AFTER",
    "training_reminder_days": "NOTICEBOT_TRAINING_REMINDER_DAYS",
    "extra_holidays": "NOTICEBOT_EXTRA_HOLIDAYS",
    "sweep_seconds": "NOTICEBOT_SWEEP_SECONDS",
    "heads_file": "NOTICEBOT_HEADS_FILE",
    "heads_hours": "NOTICEBOT_HEADS_HOURS",
    "checkpoint_key_file": "NOTICEBOT_CHECKPOINT_KEY_FILE",
    "checkpoint_public_keys": "NOTICEBOT_CHECKPOINT_PUBLIC_KEYS",
    "records_channel": "NOTICEBOT_RECORDS_CHANNEL",
    "outcome_remind_days": "NOTICEBOT_OUTCOME_REMIND_DAYS",
    "outcome_escalate_after": "NOTICEBOT_OUTCOME_ESCALATE_AFTER",
}


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and `.env`), turning validation errors into one
    readable message that names each setting by its environment variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "settings"
            name = _ENV_NAMES.get(field, field)
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
