"""A loopback stand-in for Microsoft's side of Teams: the Bot Framework's OpenID document and
signing keys (so the SDK's own token validation runs), and a Bot Connector that records every
call and can be told to fail. It runs in its own thread: the SDK fetches the keys with a
blocking call inside the event loop, which would deadlock a fake served from that loop."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://api.botframework.com"
APP_ID = "00000000-0000-4000-8000-00000000b075"
TENANT = "11111111-1111-4111-8111-111111111111"
KID = "noticebot-test-key"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 0  # what the fake answered


@dataclass
class FakeTeams:
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    calls: list[Call] = field(default_factory=list)
    # (status, headers) answered to the next connector calls, in order, before succeeding.
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: int = 1000
    key_fetches: int = 0  # GETs of the signing keys

    @property
    def openid_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    def jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]}

    def mint(self, *, service_url: str | None = None, key: rsa.RSAPrivateKey | None = None,
             audience: str = APP_ID, issuer: str = ISSUER, expires_in: int = 300,
             kid: str = KID) -> str:
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "iat": now - 10, "nbf": now - 10,
                  "exp": now + expires_in, "serviceurl": service_url or self.url}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], object]:
        path = unquote(handler.path)
        if handler.command == "GET" and path.endswith("/openidconfiguration"):
            return 200, {}, {"issuer": ISSUER, "jwks_uri": f"{self.url}/v1/.well-known/keys",
                             "id_token_signing_alg_values_supported": ["RS256"]}
        if handler.command == "GET" and path.endswith("/keys"):
            with self._lock:
                self.key_fetches += 1
            return 200, {}, self.jwks()
        length = int(handler.headers.get("content-length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        call = Call(handler.command, path, dict(handler.headers.items()), body)
        with self._lock:
            self.calls.append(call)
            if self.failures:
                status, headers = self.failures.pop(0)
                call.status = status
                return status, headers, {"error": {"code": "Fake", "message": str(status)}}
            self._ids += 1
            ids = self._ids
        if path == "/v3/conversations":
            member = body["members"][0]["id"]
            call.status = 201
            return 201, {}, {"id": f"a:dm-{member}"}
        if handler.command == "PUT":
            call.status = 200
            return 200, {}, {"id": path.rsplit("/", 1)[-1]}
        call.status = 201
        return 201, {}, {"id": f"{ids}"}

    def start(self) -> FakeTeams:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                status, headers, payload = fake.answer(self)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def posts(self) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/activities")]

    def cards(self, conversation_prefix: str = "") -> list[dict[str, Any]]:
        """The Adaptive Cards sent to conversations whose id starts with the prefix."""
        found = []
        for call in self.calls:
            where = call.path.removeprefix("/v3/conversations/")
            if call.path.startswith("/v3/conversations/") and where.startswith(
                    conversation_prefix):
                found += [a["content"] for a in call.body.get("attachments") or []]
        return found


def activity(kind: str, *, object_id: str | None, service_url: str,
             conversation: str = "a:personal", conversation_type: str = "personal",
             name: str | None = None, value: object = None, text: str | None = None,
             activity_id: str | None = None,
             entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Teams activity as the Bot Connector posts it to /api/messages."""
    body: dict[str, Any] = {
        "type": kind, "id": activity_id or uuid.uuid4().hex, "channelId": "msteams",
        "serviceUrl": service_url, "timestamp": "2026-11-23T15:00:00.000Z",
        "from": {"id": f"29:{object_id or 'nobody'}", "name": "Someone",
                 **({"aadObjectId": object_id} if object_id else {})},
        "conversation": {"id": conversation, "conversationType": conversation_type,
                         "tenantId": TENANT},
        "recipient": {"id": f"28:{APP_ID}", "name": "noticebot"},
        "channelData": {"tenant": {"id": TENANT}},
    }
    if name is not None:
        body["name"] = name
    if value is not None:
        body["value"] = value
    if text is not None:
        body["text"] = text
    if entities is not None:
        body["entities"] = entities
    return body
