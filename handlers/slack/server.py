"""HTTP mode: `POST /slack/events` (commands, interactivity, events), `POST /usncb/callback`
and the operations endpoints (`/livez`, `/readyz`, `/metrics`), as a WSGI app served by
gunicorn's threaded workers."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from slack_bolt import App, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from sqlalchemy import Engine

from bot.clock import SystemClock
from bot.core.service import Core
from bot.ops import metrics
from bot.ops.logs import log_context
from bot.ops.probes import Readiness
from handlers import usncb_callback
from handlers.ops import ops_response

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
EVENTS_PATH = "/slack/events"
REQUEST_ID_KEY = "noticebot.request_id"
log = logging.getLogger(__name__)


class _Handler(SlackRequestHandler):
    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        response = super().dispatch(request)
        if response.status == 401:
            log.warning("a Slack request's signature did not verify: if every request fails, "
                        "check SLACK_SIGNING_SECRET")
        if response.status >= 500:
            # Bolt answers 500 when it cannot route a (signed) payload at all, e.g. one missing
            # keys it expects. That is bad input, not a server fault (R9): say so plainly.
            log.warning("unprocessable Slack request: %s", response.body)
            return BoltResponse(status=400, body="noticebot could not read this request")
        return response


def wsgi_app(app: App, engine: Engine, core: Core | None = None,
             readiness: Readiness | None = None) -> WSGIApp:
    """Slack's events, the USNCB callback and the operations endpoints, each request carrying
    its request id (the caller's X-Request-Id, or a new one) and platform in the log context."""
    slack = _Handler(app, path=EVENTS_PATH)
    readiness = readiness or Readiness(engine)
    clock = core.clock if core is not None else SystemClock()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request_id = _request_id(environ)
        environ[REQUEST_ID_KEY] = request_id
        path = environ.get("PATH_INFO")
        platform = "usncb" if path == usncb_callback.PATH else (
            "slack" if path == EVENTS_PATH else None)
        with log_context(request_id=request_id, platform=platform):
            answer = ops_response(environ, start_response, readiness=readiness, clock=clock)
            if answer is not None:
                return answer
            if (core is not None and path == usncb_callback.PATH
                    and environ.get("REQUEST_METHOD") == "POST"):
                def respond(status: str, body: dict[str, Any]) -> Iterable[bytes]:
                    if status.startswith("401"):
                        log.warning("USNCB callback refused (%s): if every callback is, check "
                                    "NOTICEBOT_USNCB_WEBHOOK_SECRET", body.get("error"))
                    payload = json.dumps(body).encode()
                    start_response(status, [("Content-Type", "application/json"),
                                            ("Content-Length", str(len(payload)))])
                    return [payload]
                return usncb_callback.handle(core, environ, respond)
            return slack(environ, start_response)

    return application


def _request_id(environ: dict[str, Any]) -> str:
    given = str(environ.get("HTTP_X_REQUEST_ID") or "")
    if given and len(given) <= 64 and given.replace("-", "").isalnum():
        return given
    return uuid.uuid4().hex[:16]


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """Gunicorn's error and access logs through noticebot's logging setup (one format, one
    stream), the access log as fields: method, path, status, duration, request id."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
        self.access_log.setLevel(logging.INFO)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        path = environ.get("PATH_INFO", "")
        if path in ("/livez", "/readyz", "/healthz", "/metrics") and str(resp.status).startswith(
                "200"):
            return  # probes and scrapes every few seconds would drown the rest
        status = str(resp.status).split(" ", 1)[0]
        duration_ms = round(request_time.total_seconds() * 1000, 1)
        self.access_log.info(
            "%s %s %s %sms", environ.get("REQUEST_METHOD"), path, status, duration_ms,
            extra={"method": environ.get("REQUEST_METHOD"), "path": path,
                   "status": int(status) if status.isdigit() else status,
                   "duration_ms": duration_ms, "request_id": environ.get(REQUEST_ID_KEY),
                   "remote_addr": environ.get("REMOTE_ADDR")})


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn configured in code; each worker builds its own app after the fork.

    `on_exit` runs in each worker as it stops (after its in-flight requests are answered): it
    stops the worker's sweeps and delivery threads, so SIGTERM ends the process in a few
    seconds without "cannot schedule new futures after interpreter shutdown"."""

    def __init__(self, factory: Callable[[], WSGIApp], *, port: int, workers: int,
                 threads: int, on_exit: Callable[[], None] | None = None,
                 graceful_timeout: int = 10) -> None:
        self.factory = factory
        self.on_exit = on_exit
        self.options = {"bind": f"0.0.0.0:{port}", "workers": workers, "threads": threads,
                        "worker_class": "gthread", "timeout": 30,
                        "graceful_timeout": graceful_timeout, "keepalive": 2,
                        "accesslog": "-", "errorlog": "-", "logger_class": GunicornLogger,
                        "worker_exit": self._worker_exit, "child_exit": _child_exit}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        return self.factory()

    def _worker_exit(self, _server: Any, _worker: Any) -> None:
        if self.on_exit is not None:
            self.on_exit()


def _child_exit(_server: Any, worker: Any) -> None:
    metrics.process_exited(worker.pid)
