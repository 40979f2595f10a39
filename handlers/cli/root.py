"""The composition root's shared parts: settings, engines and the `noticebot` group.

The CLI lives in handlers/ because it wires every adapter (console, Slack, HTTP endpoints) to the
core; nothing below handlers/ imports it."""

from __future__ import annotations

import getpass
import logging
import socket as sockets

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.app import build_core
from bot.core.context import acting_from
from bot.core.service import Core
from config.settings import LogFormat, safe_url
from handlers.startup import cli_settings
from storage.db import DatabaseMissing, create_db_engine, open_existing, sqlite_path

log = logging.getLogger("noticebot")


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def cli_engine(url: str, *, reads_only: bool = False, existing: bool = False) -> Engine:
    """An engine disposed when the command ends, so no pooled connection outlives it.
    `existing`: the database must already exist at the newest schema (see `open_existing`);
    otherwise a SQLite file is created as needed, and its path is said on stderr."""
    if existing:
        try:
            engine = open_existing(url, reads_only=reads_only)
        except DatabaseMissing as exc:
            raise click.ClickException(str(exc)) from None
    else:
        path = sqlite_path(url)
        if path is not None:
            click.echo(f"database: SQLite file {path}", err=True)
        engine = create_db_engine(url, reads_only=reads_only)
        try:
            engine.connect().close()
        except SQLAlchemyError as exc:
            engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(f"cannot open the database at {safe_url(url)} "
                                       f"(NOTICEBOT_DATABASE_URL): {reason}") from None
    click.get_current_context().call_on_close(engine.dispose)
    return engine


def cli_core(*, existing: bool = False) -> Core:
    """`existing`: for commands that act on an existing record (never create a database)."""
    settings = cli_settings()
    return build_core(settings, engine=cli_engine(settings.database_url, existing=existing),
                      migrate=not existing)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="noticebot")
@click.option("--log-format", type=click.Choice([f.value for f in LogFormat]),
              help="Log lines as JSON (for collectors) or text (for people); overrides "
                   "NOTICEBOT_LOG_FORMAT.")
def main(log_format: str | None) -> None:
    """noticebot: the ICE Directive 15006.1 checklist for INTERPOL notices, in chat."""
    # Every record entry a command makes names the account and host that ran it.
    click.get_current_context().with_resource(acting_from(_origin()))


def _origin() -> dict[str, str]:
    return {"os_user": getpass.getuser(), "host": sockets.gethostname()}

