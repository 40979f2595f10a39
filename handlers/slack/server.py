"""HTTP mode: `POST /slack/events` (commands, interactivity, events), `POST /usncb/callback`
and the operations endpoints (`/livez`, `/readyz`, `/metrics`), as a WSGI app served by
gunicorn's threaded workers."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from sqlalchemy import Engine

from bot.clock import SystemClock
from bot.core import inbound
from bot.core.service import Core
from bot.ops import metrics
from bot.ops.logs import log_context
from bot.ops.probes import Readiness
from handlers import usncb_callback
from handlers.ops import KEEPALIVE_SECONDS, ops_response

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
EVENTS_PATH = "/slack/events"
REQUEST_ID_KEY = "noticebot.request_id"
log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024  # Slack's payloads are far smaller; a view with 100 blocks is ~100 kB
REPLAY_WINDOW_SECONDS = 300
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_SLACK_ID = re.compile(r"[A-Za-z0-9._:-]{1,255}")  # ids, timestamps, hashes, action ids


class _Handler(SlackRequestHandler):
    """Bolt's WSGI handler with the signature checked first, on the raw bytes: Bolt parses a
    body before it verifies it, so unsigned garbage used to reach its parser and answer 500
    (R1, R9). Anything unverifiable is 401; a signed body that cannot be read is 400, and is
    recorded."""

    def __init__(self, app: App, *, core: Core | None, secret: str,
                 now: Callable[[], float] = time.time) -> None:
        super().__init__(app, path=EVENTS_PATH)
        self.core = core
        self.secret = secret
        self.now = now

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != self.path:
            return super().__call__(environ, start_response)
        response = self.handle(environ)
        start_response(f"{response.status} {_reason(response.status)}",
                       [(k, v) for k, values in response.headers.items() for v in values])
        body = response.body.encode()
        return [body]

    def handle(self, environ: dict[str, Any]) -> BoltResponse:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return _plain(413 if length > MAX_BODY else 400,
                          "noticebot could not read this request")
        raw: bytes = environ["wsgi.input"].read(length) if length else b""
        headers: dict[str, str | Sequence[str]] = {
            k: str(v) for k, v in WsgiHttpRequest(environ).get_headers().items()}
        if not slack_signature_ok(self.secret, timestamp=_one(headers, "x-slack-request-timestamp"),
                                  signature=_one(headers, "x-slack-signature"), body=raw,
                                  now=self.now()):
            log.warning("a Slack request's signature did not verify: if every request fails, "
                        "check SLACK_SIGNING_SECRET")
            return BoltResponse(status=401, body=json.dumps({"error": "invalid request"}),
                                headers={"content-type": "application/json"})
        try:
            body = raw.decode("utf-8")
            payload = _parse(body, _one(headers, "content-type"))
            actor, problem = _shape(payload)
        except (ValueError, RecursionError) as error:
            return self.refuse(None, f"the request body cannot be read: {_brief(error)}")
        if problem is not None:
            return self.refuse(actor, problem)
        try:
            request = BoltRequest(body=body, query=environ.get("QUERY_STRING", ""),
                                  headers=headers)
        except Exception as error:  # Bolt's own reading of a signed but odd payload
            return self.refuse(actor, f"the request cannot be read: {_brief(error)}")
        response = self.app.dispatch(request)
        if response.status >= 500:
            # Bolt answers 500 when it cannot route a (signed) payload at all, e.g. one missing
            # keys it expects. That is bad input, not a server fault (R9): say so plainly.
            log.warning("unprocessable Slack request: %s", response.body)
            return _plain(400, "noticebot could not read this request")
        return response

    def refuse(self, actor: object, reason: str) -> BoltResponse:
        """400 for a signed request the bot cannot act on; recorded like every refusal."""
        log.warning("refused Slack request: %s", reason)
        if self.core is not None:
            try:
                self.core.refuse_request(actor=actor, action="slack.unreadable", reason=reason,
                                         details={})
            except Exception:  # the database may be down: the answer stays a 400
                log.warning("could not record a refused Slack request", exc_info=True)
        return _plain(400, f"noticebot could not read this request: {reason}")


def slack_signature_ok(secret: str, *, timestamp: str | None, signature: str | None,
                       body: bytes, now: float) -> bool:
    """Slack's v0 scheme, checked on the raw bytes; any header that is not exactly the
    expected shape (ASCII digits, `v0=` and 64 hex digits) fails instead of raising."""
    if not secret or timestamp is None or signature is None:
        return False
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        return False
    if not _SIGNATURE.fullmatch(signature):
        return False
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(("v0=" + expected).encode(), signature.encode())


def _parse(body: str, content_type: str | None) -> dict[str, Any]:
    """The payload exactly as Bolt will read it (slack_bolt.request.internals.parse_body), but
    refusing what Bolt would choke on."""
    if not body:
        raise ValueError("empty body")
    if content_type == "application/json" or body.startswith("{"):
        parsed: object = json.loads(body)
    elif "payload" in body:
        parsed = dict(parse_qsl(body, keep_blank_values=True)).get("payload")
        if parsed is None:
            raise ValueError("no payload")
        parsed = json.loads(str(parsed))
    else:
        parsed = dict(parse_qsl(body, keep_blank_values=True))
    if not isinstance(parsed, dict):
        raise ValueError(f"the payload is a JSON {type(parsed).__name__}, not an object")
    return parsed


# What Bolt reads from every payload to build its context: each must be an object if present.
_OBJECTS = ("user", "team", "enterprise", "channel", "container", "view", "event",
            "authorizations", "message")


def _shape(payload: dict[str, Any]) -> tuple[object, str | None]:
    """(the acting user as given, why the payload cannot be used or None)."""
    for key in _OBJECTS:
        value = payload.get(key)
        wanted = list if key == "authorizations" else dict
        if value is not None and not isinstance(value, wanted):
            return None, f"'{key}' must be a JSON {wanted.__name__}"
    if "command" in payload:
        actor: object = payload.get("user_id")
    elif payload.get("type") == "event_callback":
        event = payload.get("event") or {}
        actor = event.get("user") if "user" in event else "slack:event"
        if not isinstance(event.get("type"), str):
            return actor, "the event has no type"
    elif payload.get("type") in ("url_verification", "app_rate_limited"):
        return None, None
    else:
        kind = payload.get("type")
        if not isinstance(kind, str):
            return None, "the payload has no type"
        actor = (payload.get("user") or {}).get("id")
        actions = payload.get("actions")
        if kind == "block_actions" and (
                not isinstance(actions, list) or not actions
                or not all(isinstance(a, dict) for a in actions)):
            return actor, "'actions' must be a list of objects"
    url = payload.get("response_url")
    if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))
                                and len(url) <= 2000):
        return actor, "'response_url' is not a URL"
    for where, value in _ids(payload):
        if value is not None and not (isinstance(value, str) and _SLACK_ID.fullmatch(value)):
            return actor, f"'{where}' is not a Slack id"
    problem = inbound.actor_problem(actor)
    return actor, problem


def _ids(payload: dict[str, Any]) -> list[tuple[str, object]]:
    """The ids the bot keys on or stores, where the payload has them."""
    view = payload.get("view") or {}
    found: list[tuple[str, object]] = [
        ("channel_id", payload.get("channel_id")), ("trigger_id", payload.get("trigger_id")),
        ("channel.id", (payload.get("channel") or {}).get("id")),
        ("view.id", view.get("id")), ("view.hash", view.get("hash")),
    ]
    for action in payload.get("actions") or []:
        found += [("action_ts", action.get("action_ts")), ("action_id", action.get("action_id"))]
    return found


def _one(headers: dict[str, str | Sequence[str]], name: str) -> str | None:
    value = headers.get(name)
    return value if isinstance(value, str) else None


def _brief(error: BaseException) -> str:
    return type(error).__name__ if isinstance(error, RecursionError) else str(error)[:120]


def _plain(status: int, text: str) -> BoltResponse:
    return BoltResponse(status=status, body=text, headers={"content-type": "text/plain"})


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def wsgi_app(app: App, engine: Engine, core: Core | None = None,
             readiness: Readiness | None = None) -> WSGIApp:
    """Slack's events, the USNCB callback and the operations endpoints, each request carrying
    its request id (the caller's X-Request-Id, or a new one) and platform in the log context."""
    slack = _Handler(app, core=core, secret=app._signing_secret or "")
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
                        "graceful_timeout": graceful_timeout,
                        "keepalive": KEEPALIVE_SECONDS,
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
