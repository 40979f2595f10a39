"""A core in webhook mode whose HTTP client goes through respx, and a callback sender."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy import Engine

from bot.app import build_core, load_roster_text, sample_roster_text
from bot.clock import ManualClock
from bot.core.service import Core
from bot.usncb.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from config.settings import Settings, UsncbChannelKind
from handlers import usncb_callback

LIAISON = "https://liaison.example.gov/usncb/requests"
SECRET = "liaison-shared-secret-0123456789"


@pytest.fixture
def liaison() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def webhook_core(settings: Settings, clock: ManualClock, engine: Engine,
                 liaison: respx.MockRouter) -> Core:
    webhook = settings.model_copy(update={
        "usncb_channel": UsncbChannelKind.webhook, "usncb_webhook_url": LIAISON,
        "usncb_webhook_secret": SecretStr(SECRET), "usncb_max_attempts": 3})
    core = build_core(webhook, clock=clock, engine=engine, usncb_http=httpx.Client(timeout=2))
    assert core.usncb_sender is not None
    core.usncb_sender.sleep = lambda seconds: None  # back-off without waiting in tests
    load_roster_text(core, sample_roster_text(clock.now().date()), actor="test", source="t")
    return core


def callback(core: Core, body: dict[str, Any] | bytes, *, timestamp: int | None = None,
             signature: str | None = None, secret: str = SECRET) -> tuple[str, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update({
        "REQUEST_METHOD": "POST", "PATH_INFO": usncb_callback.PATH,
        "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
        "HTTP_" + TIMESTAMP_HEADER.upper().replace("-", "_"): str(stamp),
        "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"):
            signature if signature is not None else sign(secret, stamp, raw),
    })
    answered: dict[str, Any] = {}

    def respond(status: str, payload: dict[str, Any]) -> list[bytes]:
        answered["status"], answered["body"] = status, payload
        return [json.dumps(payload).encode()]

    usncb_callback.handle(core, environ, respond)
    return answered["status"], answered["body"]
