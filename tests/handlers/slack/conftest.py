"""Slack tests run the real WSGI endpoint on loopback against a fake Slack Web API, and send
requests signed the way Slack signs them."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.core.service import Core
from config.settings import Settings
from handlers.slack.app import create_app
from handlers.slack.server import wsgi_app
from tests.handlers.slack.fake_slack import FakeSlack, start_fake_slack

SECRET = "test-signing-secret-0123456789"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = start_fake_slack()
    yield fake
    assert fake.server is not None
    fake.server.shutdown()
    fake.server.server_close()


class SlackUser:
    """Sends signed Slack requests to the endpoint and finds what the bot showed."""

    def __init__(self, base_url: str, fake: FakeSlack) -> None:
        self.base_url = base_url
        self.fake = fake
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def post(self, body: str, *, timestamp: int | None = None, signature: str | None = None,
             content_type: str = "application/x-www-form-urlencoded",
             headers: dict[str, str] | None = None) -> httpx.Response:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        verifier = SignatureVerifier(SECRET)
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature if signature is not None
            else verifier.generate_signature(timestamp=stamp, body=body),
            **(headers or {}),
        }
        return self.http.post("/slack/events", content=body.encode(), headers=sent)

    def command(self, user: str, text: str, *, channel: str = "C0HOUCASES") -> httpx.Response:
        token = uuid.uuid4().hex[:8]
        return self.post(urlencode({
            "command": "/notice", "text": text, "user_id": user, "channel_id": channel,
            "team_id": "T1", "trigger_id": f"trig-{token}",
            "response_url": self.fake.response_url(token),
        }))

    def interact(self, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.post(urlencode({"payload": json.dumps(payload)}), **kwargs)

    def click(self, user: str, value: dict[str, Any], *, channel: str = "C0HOUCASES",
              **kwargs: Any) -> httpx.Response:
        token = uuid.uuid4().hex[:8]
        return self.interact({
            "type": "block_actions", "team": {"id": "T1"}, "user": {"id": user},
            "trigger_id": f"trig-{token}", "response_url": self.fake.response_url(token),
            "channel": {"id": channel}, "container": {"type": "message", "channel_id": channel},
            "actions": [{"type": "button", "action_id": f"nb:{value['action']}:0",
                         "block_id": "b", "value": json.dumps(value),
                         "action_ts": str(time.time())}],
        }, **kwargs)

    def submit(self, user: str, view: dict[str, Any], values: dict[str, Any],
               *, view_id: str | None = None) -> httpx.Response:
        state: dict[str, Any] = {}
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            name, kind = block["block_id"], block["element"]["type"]
            value = values.get(name)
            if kind == "datepicker":
                element = {"type": kind, "selected_date": value}
            elif kind in ("static_select", "radio_buttons"):
                element = {"type": kind,
                           "selected_option": {"value": value} if value else None}
            elif kind == "checkboxes":
                element = {"type": kind, "selected_options": [{"value": v} for v in value or []]}
            else:
                element = {"type": kind, "value": value}
            state[name] = {"value": element}
        return self.interact({
            "type": "view_submission", "team": {"id": "T1"}, "user": {"id": user},
            "view": {**view, "id": view_id or f"V{uuid.uuid4().hex[:8]}",
                     "state": {"values": state}},
        })

    # --- what the bot showed -------------------------------------------------------------------

    def buttons(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with self.fake._lock:
            calls = list(self.fake.calls)
        for call in calls:
            blocks = call.body.get("blocks") or (call.body.get("view") or {}).get("blocks") or []
            for block in blocks:
                for element in block.get("elements", []) if block.get("type") == "actions" else []:
                    found.append(json.loads(element["value"]))
        return found

    def button(self, action: str, case_id: str | None = None) -> dict[str, Any]:
        """The newest button for `action` the bot has shown (waiting for it to appear)."""
        def matches() -> list[dict[str, Any]]:
            return [b for b in self.buttons() if b["action"] == action
                    and (case_id is None or b["case_id"] == case_id)]
        self.fake.wait_for(lambda: bool(matches()))
        return matches()[-1]

    def last_view(self) -> dict[str, Any]:
        views = self.fake.of("views.open")
        assert views, "no modal opened"
        return dict(views[-1]["view"])


@pytest.fixture
def slack_settings(settings: Settings, fake_slack: FakeSlack) -> Settings:
    return settings.model_copy(update={"slack_bot_token": "xoxb-test-token",
                                       "slack_signing_secret": SECRET,
                                       "slack_api_url": fake_slack.api_url})


@pytest.fixture
def slack(core: Core, slack_settings: Settings, fake_slack: FakeSlack) -> Iterator[SlackUser]:
    core.settings = slack_settings
    app = create_app(slack_settings, core)
    server = make_server("127.0.0.1", 0, wsgi_app(app, core.engine, core),
                         server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    user = SlackUser(f"http://127.0.0.1:{server.server_address[1]}", fake_slack)
    yield user
    user.http.close()
    server.shutdown()
    server.server_close()
