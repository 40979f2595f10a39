"""Call a WSGI app in-process with raw bytes and raw headers (anything a socket could carry:
invalid UTF-8, a Content-Length longer than the body, duplicated headers joined by a comma)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from handlers.slack.server import WSGIApp


@dataclass
class Answer:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def call(app: WSGIApp, path: str, body: bytes, headers: dict[str, str], *,
         content_length: int | None = None, method: str = "POST") -> Answer:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "test", "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "CONTENT_LENGTH": str(len(body) if content_length is None else content_length),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    status: list[str] = []

    def start_response(line: str, _headers: list[tuple[str, str]], *_: Any) -> None:
        status.append(line)

    chunks = app(environ, start_response)
    return Answer(int(status[0].split()[0]), b"".join(chunks))
