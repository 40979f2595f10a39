"""Wiring: settings in, a ready `Core` out. No module-level instances."""

from __future__ import annotations

import ssl
from datetime import date, timedelta
from importlib import resources

import httpx
from sqlalchemy import Engine

from bot.clock import Clock, SystemClock
from bot.core.context import unit_of_work
from bot.core.service import Core
from bot.roster import (
    ImportReport,
    RosterError,
    import_roster,
    parse_roster,
    service_url_problems,
)
from bot.usncb.webhook import WebhookSender
from config.platforms import Platform
from config.settings import Settings, UsncbChannelKind
from storage.db import create_db_engine, upgrade


def build_core(settings: Settings, *, clock: Clock | None = None,
               engine: Engine | None = None, migrate: bool = True,
               usncb_http: httpx.Client | None = None) -> Core:
    """`usncb_http` is the client the USNCB webhook uses (tests inject a mocked transport)."""
    engine = engine or create_db_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    sender = None
    if settings.usncb_channel is UsncbChannelKind.webhook:
        client = usncb_http or httpx.Client(timeout=settings.usncb_timeout_seconds,
                                            verify=usncb_tls(settings))
        sender = WebhookSender(url=settings.usncb_webhook_url,
                               secret=settings.usncb_webhook_secret.get_secret_value(),
                               client=client,
                               max_attempts=settings.usncb_max_attempts)
    return Core(engine=engine, settings=settings, clock=clock or SystemClock(),
                usncb_sender=sender)


def usncb_tls(settings: Settings) -> ssl.SSLContext:
    """TLS to the liaison system: the system's trust store, or only NOTICEBOT_USNCB_CA_BUNDLE;
    with NOTICEBOT_USNCB_CLIENT_CERT (and _KEY) noticebot presents a client certificate
    (mutual TLS)."""
    context = ssl.create_default_context(cafile=settings.usncb_ca_bundle or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.usncb_client_cert:
        context.load_cert_chain(settings.usncb_client_cert, settings.usncb_client_key or None)
    return context


def sample_roster_text(today: date) -> str:
    text = resources.files("config").joinpath("sample_roster.toml").read_text("utf-8")
    return text.replace("RECENT_DATE", (today - timedelta(days=30)).isoformat()).replace(
        "EXPIRED_DATE", (today - timedelta(days=400)).isoformat()
    )


def load_roster_text(core: Core, text: str, *, actor: str, source: str) -> ImportReport:
    """Validate the whole file, then import it in one transaction (nothing half-written)."""
    roster = parse_roster(text, today=core.clock.now().date())
    if Platform.teams in core.settings.platforms and (
            problems := service_url_problems(roster, core.settings.teams.service_hosts())):
        raise RosterError(problems)
    with unit_of_work(core.engine, clock=core.clock, settings=core.settings,
                      actor=actor) as ctx:
        ctx.record("admin", "command.roster_import", source=source)
        return import_roster(ctx, roster, source=source)
