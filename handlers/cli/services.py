"""The long-running processes: the console, Slack over HTTP or Socket Mode, the worker."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from bot.app import build_core
from bot.delivery.loop import Delivery
from bot.delivery.together import Together
from bot.ops import metrics
from bot.ops.probes import Readiness
from bot.schedule.runner import start_scheduler
from config.platforms import Platform
from config.settings import Settings
from handlers.cli.root import (
    cli_core,
    cli_engine,
    log,
    main,
)
from handlers.process import freeze_startup_heap
from handlers.slack.relay import SlackRelay
from handlers.startup import service_settings
from storage.db import upgrade


@main.command()
@click.option("--as", "user", metavar="USER", help="Start as this roster user.")
@click.option("--sample/--no-sample", default=None,
              help="Load the bundled sample roster into an empty database without asking.")
def shell(user: str | None, sample: bool | None) -> None:
    """The local console: run the whole workflow in the terminal (SQLite by default)."""
    from handlers.console import run_console

    core = cli_core()
    sys.exit(run_console(core, stdin=sys.stdin, stdout=sys.stdout,
                         interactive=sys.stdin.isatty(), user=user, load_sample=sample))


GIL_TURN_SECONDS = 0.0005


@main.command()
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--threads", default=8, show_default=True, help="Threads per worker.")
def serve(workers: int, threads: int) -> None:
    """HTTP mode for Slack: POST /slack/events, GET /livez, /readyz and /metrics on
    NOTICEBOT_PORT."""
    from handlers.slack.app import (
        SlackSettingsError,
        check_slack,
        create_app,
        require_slack_settings,
    )
    from handlers.slack.server import GunicornServer, wsgi_app

    settings = service_settings()
    try:
        require_slack_settings(settings)
        check_slack(settings)  # once, here: a bad token is one line, not a worker's traceback
    except SlackSettingsError as exc:
        raise click.ClickException(str(exc)) from None
    upgrade(cli_engine(settings.database_url))
    # Before the fork: the workers' counters go to files that any worker's /metrics adds up
    # (in PROMETHEUS_MULTIPROC_DIR, or a temporary folder removed at exit).
    given = metrics.multiprocess_dir()
    metrics_dir = metrics.enable_multiprocess(given)
    if given is None:
        click.get_current_context().call_on_close(
            lambda: metrics.remove_multiprocess_dir(metrics_dir))
    schedulers: list[Any] = []
    relays: list[SlackRelay] = []

    def factory() -> Any:
        # A worker's threads share one interpreter: a thread whose database answer has arrived
        # waits for the interpreter lock, by default up to 5 ms, while another thread computes,
        # and an interaction makes several round trips, some holding the record's lock. Shorter
        # turns let it go on sooner (docs/performance.md, "Latency").
        sys.setswitchinterval(GIL_TURN_SECONDS)
        core = build_core(settings, migrate=False)
        app = create_app(settings, core, verify_token=False)
        relay = SlackRelay(engine=core.engine, client=app.client, clock=core.clock,
                           alert_on=settings.platforms)
        relays.append(relay)
        readiness = Readiness(core.engine)
        # Per worker, after the fork.
        schedulers.append(start_scheduler(core, deliver=relay.drain, nudge=relay.nudge,
                                          readiness=readiness))
        served = wsgi_app(app, core.engine, core, readiness)
        freeze_startup_heap()
        return served

    def stop_background() -> None:
        for relay in relays:
            relay.stop()
        for scheduler in schedulers:
            scheduler.shutdown(wait=True)
        log.info("worker stopped")

    GunicornServer(factory, port=settings.port, workers=workers, threads=threads,
                   on_exit=stop_background).run()


@main.command()
def socket() -> None:
    """Socket Mode for development (needs SLACK_APP_TOKEN; no public URL)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from handlers.slack.app import SlackSettingsError, create_app, require_slack_settings

    settings = service_settings()
    try:
        require_slack_settings(settings, socket_mode=True)
        core = build_core(settings, engine=cli_engine(settings.database_url))
        app = create_app(settings, core)
    except SlackSettingsError as exc:
        raise click.ClickException(str(exc)) from None
    relay = SlackRelay(engine=core.engine, client=app.client, clock=core.clock,
                       alert_on=settings.platforms)
    scheduler = start_scheduler(core, deliver=relay.drain, nudge=relay.nudge)
    try:
        SocketModeHandler(  # type: ignore[no-untyped-call]
            app, settings.slack_app_token.get_secret_value()).start()
    finally:
        scheduler.shutdown(wait=True)


@main.command()
@click.option("--metrics-port", default=9300, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the worker's /metrics, /livez and /readyz (0: none).")
def worker(metrics_port: int) -> None:
    """Run only the sweeps (reminders, escalations, digests, USNCB; Slack delivery when a Slack
    token is set, Teams delivery when NOTICEBOT_PLATFORMS lists teams), for deployments that
    separate them from `serve`. Stops cleanly on SIGTERM."""
    settings = service_settings()
    teams = Platform.teams in settings.platforms
    if teams:  # before the database: a missing Teams secret is one line
        _check_teams(settings)
    core = build_core(settings, engine=cli_engine(settings.database_url))
    deliver, nudge, relay = None, None, None
    loops: list[Delivery] = []
    if settings.slack_bot_token.get_secret_value():
        from handlers.slack.app import SlackSettingsError, check_slack, web_client

        client = web_client(settings)
        try:
            check_slack(settings, client)
        except SlackSettingsError as exc:
            raise click.ClickException(str(exc)) from None
        loops.append(SlackRelay(engine=core.engine, client=client, clock=core.clock,
                                alert_on=settings.platforms))
    if teams:
        from handlers.teams.relay import teams_relay

        loops.append(teams_relay(engine=core.engine, settings=settings.teams, clock=core.clock,
                                 alert_on=settings.platforms))
    if loops:  # one relay thread drives every platform's loop, each in its own thread
        relay = Together(loops)
        deliver, nudge = relay.drain, relay.nudge
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    readiness = Readiness(core.engine)
    scheduler = start_scheduler(core, deliver=deliver, nudge=nudge, readiness=readiness)
    server = None
    if metrics_port:
        from handlers.ops import serve_ops

        try:
            server, _ = serve_ops(port=metrics_port, readiness=readiness, clock=core.clock)
        except OSError as exc:
            scheduler.shutdown(wait=True)
            raise click.ClickException(f"cannot serve metrics on --metrics-port "
                                       f"{metrics_port}: {exc.strerror or exc}") from None
    log.info("worker running: sweeps every %ss%s%s", settings.sweep_seconds,
             "".join(f", {loop.platform.value} relay on" for loop in loops),
             f", /metrics on port {metrics_port}" if metrics_port else "")
    stop.wait()
    log.info("worker stopping")
    if server is not None:
        server.shutdown()
    if relay is not None:
        relay.stop()
    scheduler.shutdown(wait=True)
    log.info("worker stopped")


def _check_teams(settings: Settings) -> None:
    """A worker delivering to Teams checks the Teams settings as `noticebot teams` does."""
    from handlers.teams.checks import TeamsSettingsError, check_settings

    try:
        check_settings(settings)
    except TeamsSettingsError as exc:
        raise click.ClickException(str(exc)) from None
