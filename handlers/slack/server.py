"""HTTP mode: `POST /slack/events` (commands, interactivity, events) and `GET /healthz`,
as a WSGI app served by gunicorn's threaded workers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.app.base import BaseApplication
from slack_bolt import App, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from sqlalchemy import Engine, text

from bot.core.service import Core
from handlers import usncb_callback

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
EVENTS_PATH = "/slack/events"
log = logging.getLogger(__name__)


class _Handler(SlackRequestHandler):
    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        response = super().dispatch(request)
        if response.status >= 500:
            # Bolt answers 500 when it cannot route a (signed) payload at all, e.g. one missing
            # keys it expects. That is bad input, not a server fault (R9): say so plainly.
            log.warning("unprocessable Slack request: %s", response.body)
            return BoltResponse(status=400, body="noticebot could not read this request")
        return response


def wsgi_app(app: App, engine: Engine, core: Core | None = None) -> WSGIApp:
    slack = _Handler(app, path=EVENTS_PATH)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (core is not None and environ.get("PATH_INFO") == usncb_callback.PATH
                and environ.get("REQUEST_METHOD") == "POST"):
            def respond(status: str, body: dict[str, Any]) -> Iterable[bytes]:
                payload = json.dumps(body).encode()
                start_response(status, [("Content-Type", "application/json"),
                                        ("Content-Length", str(len(payload)))])
                return [payload]
            return usncb_callback.handle(core, environ, respond)
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                status, body = "200 OK", {"status": "ok"}
            except Exception as error:  # the probe reports any database failure
                status, body = "503 Service Unavailable", {"status": "error",
                                                           "error": type(error).__name__}
            payload = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(payload)))])
            return [payload]
        return slack(environ, start_response)

    return application


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn configured in code; each worker builds its own app after the fork."""

    def __init__(self, factory: Callable[[], WSGIApp], *, port: int, workers: int,
                 threads: int) -> None:
        self.factory = factory
        self.options = {"bind": f"0.0.0.0:{port}", "workers": workers, "threads": threads,
                        "worker_class": "gthread", "timeout": 30, "graceful_timeout": 20,
                        "accesslog": "-", "errorlog": "-"}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        return self.factory()
