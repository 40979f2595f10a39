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
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from pydantic import SecretStr
from slack_bolt import App
from sqlmodel import Session, select

from bot.core.service import Core
from bot.schedule.relay_loop import RelayLoop
from config.settings import Settings
from handlers.slack.app import create_app
from handlers.slack.relay import SlackRelay
from handlers.slack.server import WSGIApp, wsgi_app
from handlers.slack.work import ContextExecutor
from storage.models import OutboxMessage, OutboxStatus
from tests.handlers.slack.fake_slack import FakeSlack, start_fake_slack
from tests.handlers.slack.slack_requests import (
    FORM,
    click_body,
    command_body,
    interaction_body,
    signed_headers,
    submit_body,
)

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
        self.wsgi: WSGIApp | None = None  # the same app, for calls in-process with raw bytes
        self.bolt: App | None = None

    def post(self, body: str, *, timestamp: int | None = None, signature: str | None = None,
             content_type: str = FORM, headers: dict[str, str] | None = None) -> httpx.Response:
        sent = {**signed_headers(SECRET, body, timestamp=timestamp, signature=signature,
                                 content_type=content_type), **(headers or {})}
        return self.http.post("/slack/events", content=body.encode(), headers=sent)

    def command(self, user: str, text: str, *, channel: str = "C0HOUCASES") -> httpx.Response:
        token = uuid.uuid4().hex[:8]
        return self.post(command_body(user, text, channel=channel, trigger_id=f"trig-{token}",
                                      response_url=self.fake.response_url(token)))

    def interact(self, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.post(interaction_body(payload), **kwargs)

    def click(self, user: str, value: dict[str, Any], *, channel: str = "C0HOUCASES",
              **kwargs: Any) -> httpx.Response:
        token = uuid.uuid4().hex[:8]
        return self.post(click_body(user, value, channel=channel, trigger_id=f"trig-{token}",
                                    response_url=self.fake.response_url(token)), **kwargs)

    def submit(self, user: str, view: dict[str, Any], values: dict[str, Any],
               *, view_id: str | None = None) -> httpx.Response:
        return self.post(submit_body(user, view, values,
                                     view_id=view_id or f"V{uuid.uuid4().hex[:8]}"))

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

    def settle(self, core: Core, timeout: float = 10.0) -> None:
        """Wait until the app has nothing left to do: no Slack listener queued or running and
        nothing pending in the outbox. What has not happened by then will not happen."""
        assert self.bolt is not None
        executor = self.bolt.listener_runner.listener_executor
        assert isinstance(executor, ContextExecutor)
        deadline = time.monotonic() + timeout
        assert executor.wait_idle(timeout), "Slack listeners still running"

        def drained() -> bool:
            with Session(core.engine) as session:
                return session.exec(select(OutboxMessage).where(
                    OutboxMessage.status == OutboxStatus.pending)).first() is None

        self.fake.wait_for(drained, timeout=max(deadline - time.monotonic(), 0.1))
        assert executor.wait_idle(max(deadline - time.monotonic(), 0.1))

    def last_view(self) -> dict[str, Any]:
        views = self.fake.of("views.open")
        assert views, "no modal opened"
        return dict(views[-1]["view"])


@pytest.fixture
def slack_settings(settings: Settings, fake_slack: FakeSlack) -> Settings:
    return settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-test-token"),
                                       "slack_signing_secret": SecretStr(SECRET),
                                       "slack_api_url": fake_slack.api_url})


@pytest.fixture
def slack(core: Core, slack_settings: Settings, fake_slack: FakeSlack) -> Iterator[SlackUser]:
    core.settings = slack_settings
    app = create_app(slack_settings, core)
    # The relay thread `noticebot serve` runs (via start_scheduler), without the other sweeps.
    # No pacing: this fake Slack has no rate limit, and the flows post many replies per case.
    relay = SlackRelay(engine=core.engine, client=app.client, clock=core.clock, pace=0.0)
    loop = RelayLoop(relay.drain, engine=core.engine, interval=1.0, nudge=relay.nudge).start()
    application = wsgi_app(app, core.engine, core)
    server = make_server("127.0.0.1", 0, application,
                         server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    user = SlackUser(f"http://127.0.0.1:{server.server_address[1]}", fake_slack)
    user.wsgi, user.bolt = application, app
    yield user
    user.http.close()
    server.shutdown()
    server.server_close()
    loop.stop()
