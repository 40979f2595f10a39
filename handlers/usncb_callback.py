"""`POST /usncb/callback`: answers from the USNCB liaison system.

Same HMAC scheme as the requests noticebot sends, timestamped, with a 5-minute replay window;
a replayed, forged or stale callback gets 401 and nothing is written. The answer is recorded by
the core exactly as an officer's would be.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.core.service import Core
from bot.messages import RefusalCode
from bot.usncb.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

PATH = "/usncb/callback"
MAX_BODY = 64 * 1024
STATUS_FOR_CODE = {RefusalCode.unknown_request: "404 Not Found",
                   RefusalCode.stage: "409 Conflict", RefusalCode.closed: "409 Conflict",
                   RefusalCode.answered: "409 Conflict", RefusalCode.bad_input: "400 Bad Request"}
Respond = Callable[[str, dict[str, Any]], Iterable[bytes]]


def _header(environ: dict[str, Any], name: str) -> str | None:
    value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return str(value) if value is not None else None


def handle(core: Core, environ: dict[str, Any], respond: Respond,
           *, now: Callable[[], float] = time.time) -> Iterable[bytes]:
    secret = core.settings.usncb_webhook_secret.get_secret_value()
    if not secret:
        return respond("404 Not Found", {"error": "the USNCB webhook channel is not enabled"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length > MAX_BODY:
        return respond("413 Payload Too Large", {"error": "body too large"})
    if length < 0:
        return respond("400 Bad Request", {"error": "bad Content-Length"})
    body = environ["wsgi.input"].read(length) if length else b""
    signature = _header(environ, SIGNATURE_HEADER)
    if not verify(secret, timestamp=_header(environ, TIMESTAMP_HEADER), signature=signature,
                  body=body, now=now()):
        return respond("401 Unauthorized", {"error": "invalid or stale signature"})
    assert signature is not None
    if core.callback_seen(signature):
        return respond("401 Unauthorized", {"error": "replayed callback"})
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be an answer
        return respond("400 Bad Request", {"error": "body is not JSON"})
    if not isinstance(payload, dict):
        return respond("400 Bad Request", {"error": "body must be a JSON object"})
    try:
        outcome = core.usncb_answer(body=payload, signature=signature)
    except IntegrityError:  # the same callback raced itself past the replay check
        return respond("401 Unauthorized", {"error": "replayed callback"})
    if outcome.ok:
        status = "already recorded" if outcome.already_recorded else "recorded"
        core.deliver_usncb()
        return respond("200 OK", {"status": status, "case_id": outcome.case_id})
    if outcome.errors:
        return respond("400 Bad Request", {"error": "invalid answer", "fields": outcome.errors})
    code = STATUS_FOR_CODE.get(outcome.refusal_code, "409 Conflict") if outcome.refusal_code \
        else "409 Conflict"
    return respond(code, {"error": outcome.refusal})
