"""Settings, logs and the SIEM stream, as each `noticebot` command starts them: one-shot
commands log on stderr (their output is on stdout), long-running ones on stdout. Apart from the
`noticebot` group so that every process's command (`serve`, `worker`, `teams`) starts the same
way without importing the group that registers it."""

from __future__ import annotations

import sys
from typing import TextIO

import click

from bot.ops.fips import FipsError, require_fips
from bot.ops.logs import configure_logging
from bot.ops.siem import install_siem, uninstall_siem
from config.settings import LogFormat, Settings, SettingsError, load_settings


def cli_settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.require_fips:
        try:
            require_fips()
        except FipsError as exc:
            raise click.ClickException(str(exc)) from None
    # One-shot commands: their output is on stdout, so their log lines (and SIEM lines) go to
    # stderr.
    configure_logging(settings, stream=sys.stderr, log_format=_log_format(), quiet=True)
    _stream_to_siem(settings, sys.stderr)
    return settings


def service_settings() -> Settings:
    """Settings for the long-running processes (serve, worker, socket, teams): logs on stdout."""
    settings = cli_settings()
    configure_logging(settings, stream=sys.stdout, log_format=_log_format())
    _stream_to_siem(settings, None)
    return settings


def _stream_to_siem(settings: Settings, stream: TextIO | None) -> None:
    try:
        install_siem(settings, stream=stream)
    except OSError as exc:
        raise click.ClickException(f"NOTICEBOT_SIEM_SYSLOG_ADDRESS: cannot open syslog at "
                                   f"{settings.siem_syslog_address} ({exc})") from None
    click.get_current_context().call_on_close(uninstall_siem)


def _log_format() -> LogFormat | None:
    chosen = click.get_current_context().find_root().params.get("log_format")
    return LogFormat(chosen) if chosen else None


def log_format_in_use(settings: Settings) -> LogFormat:
    """`--log-format` if given, else NOTICEBOT_LOG_FORMAT's: for processes that set up their
    logs themselves (a `noticebot teams` worker)."""
    return _log_format() or settings.log_format
