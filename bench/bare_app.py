"""The P1 baseline: a Bolt app whose command, button and form handlers only ack, built and
served exactly like `noticebot serve` (same App options and Web API client, same WSGI wrapper,
same gunicorn worker class, workers and threads) but with nothing behind the ack (and without
serve's logging setup: its log lines and metrics are part of what the comparison measures).

`python -m bench.bare_app --port N` (SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL as for
serve: the client's one auth.test goes to the fake Slack)."""

from __future__ import annotations

import argparse
import re

from slack_bolt import Ack, App
from sqlalchemy import create_engine

from bot.ops.probes import Readiness
from config.settings import Settings
from handlers.cli.services import serve
from handlers.slack.app import bolt_options, check_slack, web_client
from handlers.slack.server import GunicornServer, WSGIApp, wsgi_app


def create_bare_app(settings: Settings) -> App:
    app = App(client=web_client(settings),
              signing_secret=settings.slack_signing_secret.get_secret_value(), **bolt_options())

    @app.command("/notice")
    def command(ack: Ack) -> None:
        ack()

    @app.action(re.compile(r"^nb:"))
    def button(ack: Ack) -> None:
        ack()

    @app.view("nb:form")
    def submit(ack: Ack) -> None:
        ack()

    return app


class _AlwaysReady(Readiness):
    def check(self) -> tuple[bool, dict[str, str]]:
        return True, {}


def _default(option: str) -> int:
    """`noticebot serve`'s own default for --workers / --threads, so both compare alike."""
    found = next(p for p in serve.params if p.name == option).default
    assert isinstance(found, int)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=_default("workers"))
    parser.add_argument("--threads", type=int, default=_default("threads"))
    args = parser.parse_args(argv)
    settings = Settings(_env_file=None)  # the SLACK_* variables, as serve reads them
    check_slack(settings)  # serve's one auth.test, before the fork

    def factory() -> WSGIApp:
        # The probes need an engine; an in-memory one (always ready: it has no schema to be
        # at) keeps them as cheap as serve's.
        engine = create_engine("sqlite://")
        return wsgi_app(create_bare_app(settings), engine, readiness=_AlwaysReady(engine))

    GunicornServer(factory, port=args.port, workers=args.workers, threads=args.threads).run()


if __name__ == "__main__":
    main()
