"""Operations endpoints, shared by `serve` (on NOTICEBOT_PORT) and `worker` (on its metrics
port): `GET /livez`, `GET /readyz` (and `/healthz`, its older name), `GET /metrics`."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.clock import Clock
from bot.ops import metrics
from bot.ops.probes import Readiness

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PATHS = ("/livez", "/readyz", "/healthz", "/metrics")
# How long an idle kept-alive connection stays open. It must outlast the idle timeout of
# whatever sends the requests (a load balancer's, often 60 s; a client pool's, httpx's is 5 s):
# when the server closes first, a request sent at that moment finds the connection gone and is
# lost. Idle connections cost the threaded servers a file descriptor, not a thread.
KEEPALIVE_SECONDS = 75
log = logging.getLogger(__name__)


def ops_response(environ: dict[str, Any], start_response: Callable[..., Any], *,
                 readiness: Readiness, clock: Clock) -> Iterable[bytes] | None:
    """The answer to an operations request, or None if the request is not one."""
    path = environ.get("PATH_INFO")
    if path not in PATHS or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return None
    if path == "/metrics":
        body = metrics.exposition(readiness.engine, clock)
        start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE),
                                  ("Content-Length", str(len(body)))])
        return [body]
    data: dict[str, Any]
    if path == "/livez":
        status, data = "200 OK", {"status": "ok"}
    else:
        ready, checks = readiness.check()
        status = "200 OK" if ready else "503 Service Unavailable"
        data = {"status": "ok" if ready else "error"}
        if path == "/readyz":  # /healthz keeps the body it always had
            data["checks"] = checks
    payload = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(payload)))])
    return [payload]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the log; failures are logged by the probe."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve_ops(*, port: int, readiness: Readiness, clock: Clock,
              host: str = "0.0.0.0") -> tuple[WSGIServer, threading.Thread]:
    """The worker's operations server, in a background thread; `server.shutdown()` stops it."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = ops_response(environ, start_response, readiness=readiness, clock=clock)
        if answer is not None:
            return answer
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    server = make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="ops-http", daemon=True)
    thread.start()
    return server, thread
