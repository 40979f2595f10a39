"""`noticebot teams` (the Teams process: uvicorn serving POST /api/messages and the probes) and
`noticebot teams package --out DIR` (the app package for the org catalog)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from config.platforms import Platform
from config.settings import Settings, load_settings
from handlers.teams.package import (
    manifest,
    package_problems,
    public_host_name,
    write_package,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("noticebot.teams")


def _sdk() -> None:
    """Import the Teams SDK only for the commands that use it (every other `noticebot`
    command starts without it), without its preview notices on stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the SDK's ExperimentalWarning
        import microsoft_teams.apps  # noqa: F401


def _settings() -> Settings:
    _sdk()
    from handlers.startup import service_settings
    from handlers.teams.app import TeamsSettingsError, check_settings

    # As `serve` and `worker`: FIPS refused before anything starts, logs on stdout in the
    # chosen format, and the SIEM stream.
    settings = service_settings()
    try:
        check_settings(settings)
    except TeamsSettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if Platform.teams not in settings.platforms:
        # It would answer in Teams, but no root card, prompt or 1:1 card would be queued there.
        listed = ",".join(p.value for p in settings.platforms)
        raise click.ClickException(
            f"NOTICEBOT_PLATFORMS is '{listed}': add teams (e.g. teams, or slack,teams), or "
            "nothing the bot posts would reach Teams; see README 'Connect to Teams'")
    return settings


def asgi() -> FastAPI:
    """The ASGI app of one `noticebot teams` worker (uvicorn calls it after forking)."""
    _sdk()
    from fastapi import FastAPI

    from bot.app import build_core
    from bot.ops.logs import configure_logging
    from bot.ops.probes import Readiness
    from bot.ops.siem import install_siem, uninstall_siem
    from bot.schedule.runner import start_scheduler
    from handlers.process import freeze_startup_heap
    from handlers.teams.app import add_ops, create_app, initialize
    from handlers.teams.keys import SigningKeys
    from handlers.teams.relay import teams_relay

    settings = load_settings()
    # A worker is a process of its own (uvicorn starts it afresh): its logs and its SIEM
    # stream are set up here, in the format `noticebot teams` passed on (NOTICEBOT_LOG_FORMAT).
    configure_logging(settings, stream=sys.stdout)
    install_siem(settings)
    core = build_core(settings, migrate=False)
    readiness = Readiness(core.engine)
    # The Teams rows of the outbox go out from here (and from `noticebot worker`), woken by
    # this process's commits like `serve`'s Slack relay.
    relay = teams_relay(engine=core.engine, settings=settings.teams, clock=core.clock,
                        alert_on=settings.platforms)
    transport = relay.teams

    @asynccontextmanager
    async def lifespan(web: FastAPI) -> AsyncIterator[None]:
        await initialize(app)
        keys = SigningKeys(app)
        await asyncio.to_thread(keys.refresh)  # the first requests find them cached
        keys_fresh = keys.keep_fresh()
        scheduler = start_scheduler(core, deliver=relay.drain, nudge=relay.nudge,
                                    readiness=readiness)
        freeze_startup_heap()
        log.info("Teams app listening (cloud %s)", settings.teams.cloud.value)
        try:
            yield
        finally:
            keys_fresh.set()
            relay.stop()
            scheduler.shutdown(wait=True)
            transport.client.close()
            core.engine.dispose()
            uninstall_siem()

    web = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    web.state.transport = transport
    app = create_app(settings, core, fastapi=web)
    add_ops(web, readiness=readiness, clock=core.clock)
    return web


@click.group(invoke_without_command=True)
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.pass_context
def teams(ctx: click.Context, workers: int) -> None:
    """Microsoft Teams: serve POST /api/messages (and /livez, /readyz, /healthz, /metrics) on
    NOTICEBOT_TEAMS_PORT; see README 'Connect to Teams'."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from bot.ops import metrics
    from handlers.ops import KEEPALIVE_SECONDS
    from handlers.startup import log_format_in_use
    from storage.db import create_db_engine, upgrade

    settings = _settings()
    # The workers read their settings afresh: `--log-format` reaches them as the setting.
    os.environ["NOTICEBOT_LOG_FORMAT"] = log_format_in_use(settings).value
    engine = create_db_engine(settings.database_url)
    try:
        upgrade(engine)  # once, before the workers start
    finally:
        engine.dispose()
    if workers > 1:
        # Before the workers start: their counters go to files that any worker's /metrics
        # adds up (PROMETHEUS_MULTIPROC_DIR, or a temporary folder removed at exit), as
        # `serve` does for its workers.
        given = metrics.multiprocess_dir()
        shared = metrics.enable_multiprocess(given)
        if given is None:
            ctx.call_on_close(lambda: metrics.remove_multiprocess_dir(shared))
    uvicorn.run("handlers.teams.cli:asgi", factory=True, host="0.0.0.0",
                port=settings.teams.port, workers=workers, proxy_headers=True,
                access_log=False, timeout_keep_alive=KEEPALIVE_SECONDS)


@teams.command("package")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for manifest.json, color.png, outline.png and the zip.")
@click.option("--version", "version", default="1.0.0", show_default=True,
              help="The app's version (raise it for every upload).")
@click.option("--developer", default="noticebot", show_default=True)
@click.option("--website", default="", help="https:// (default: the public host).")
@click.option("--privacy", default="", help="https:// (default: the public host's /privacy).")
@click.option("--terms", default="", help="https:// (default: the public host's /terms).")
def package(out: Path, version: str, developer: str, website: str, privacy: str,
            terms: str) -> None:
    """Write the Teams app package for the org catalog (needs NOTICEBOT_TEAMS_CLIENT_ID and
    NOTICEBOT_TEAMS_PUBLIC_HOST)."""
    from handlers.startup import cli_settings

    settings = cli_settings().teams  # NOTICEBOT_REQUIRE_FIPS holds here too
    missing = [name for name, value in (("NOTICEBOT_TEAMS_CLIENT_ID", settings.client_id),
                                        ("NOTICEBOT_TEAMS_PUBLIC_HOST", settings.public_host))
               if not value]
    if missing:
        raise click.ClickException(f"missing setting(s): {', '.join(missing)}")
    home = f"https://{public_host_name(settings)}"
    urls = {"--website": website or f"{home}/", "--privacy": privacy or f"{home}/privacy",
            "--terms": terms or f"{home}/terms"}
    problems = package_problems(settings, version=version, developer=developer, urls=urls)
    if problems:
        raise click.ClickException("the package would be refused on upload:\n- "
                                   + "\n- ".join(problems))
    data = manifest(settings, version=version, developer=developer, website=urls["--website"],
                    privacy=urls["--privacy"], terms=urls["--terms"])
    archive = write_package(out, data)
    click.echo(f"wrote {archive} (manifest {data['manifestVersion']}, app id {data['id']})")
