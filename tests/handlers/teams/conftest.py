"""A Teams user in front of `noticebot teams`: signed activities posted to /api/messages of the
real SDK app (in process), Microsoft's side faked on loopback (fake_teams.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from microsoft_teams.api.auth.cloud_environment import PUBLIC, with_overrides
from pydantic import SecretStr
from sqlmodel import col, select

from bot.core.service import Core
from bot.delivery.port import Address, Posted, Recipient
from bot.messages import DestinationKind, Message
from config.settings import Settings
from config.teams import TeamsSettings
from handlers.teams.app import create_app
from handlers.teams.directory import PersonTableDirectory
from handlers.teams.transport import TeamsTransport
from storage.db import transaction
from storage.models import OutboxMessage, OutboxStatus
from tests.handlers.teams.fake_teams import APP_ID, TENANT, FakeTeams, activity
from tests.helpers import DESIGNEE, FRO, MANAGER, OFFICER, OFFICER_LAPSED

T = TypeVar("T")

# Entra object ids for the sample roster's people (the directory's interim aliases).
OIDS = {person: f"{index:08d}-0000-4000-8000-{index:012d}" for index, person in
        enumerate((OFFICER, OFFICER_LAPSED, FRO, DESIGNEE, MANAGER), start=1)}
CASES_CHANNEL = "19:houcases@thread.tacv2"  # the Houston AOR's Teams channel
STRANGER = "99999999-0000-4000-8000-999999999999"  # a tenant user not on the roster


def teams_settings(**overrides: Any) -> TeamsSettings:
    values: dict[str, Any] = {"client_id": APP_ID, "tenant_id": TENANT,
                              "client_secret": SecretStr("test-secret"), **overrides}
    return TeamsSettings(_env_file=None, **values)


class Loop:
    """An event loop in its own thread, as uvicorn runs the app; tests call into it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Client:
    """Posts to the ASGI app in process (no socket), on the app's loop."""

    def __init__(self, web: FastAPI, loop: Loop) -> None:
        self.loop = loop
        self.web = web
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=web),
                                      base_url="http://noticebot.test")

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run(self.http.post(path, **kwargs))

    def get(self, path: str) -> httpx.Response:
        return self.loop.run(self.http.get(path))

    def close(self) -> None:
        self.loop.run(self.http.aclose())


@pytest.fixture
def fake() -> Iterator[FakeTeams]:
    server = FakeTeams().start()
    yield server
    server.stop()


@dataclass
class TeamsUser:
    """Posts activities as a given person, and relays the outbox to the fake connector the way
    the delivery loop will (post, thread reply, update in place, DMs)."""

    client: Client
    fake: FakeTeams
    core: Core
    transport: TeamsTransport
    posted: dict[str, Posted] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)

    def post(self, body: dict[str, Any], *, token: str | None = None,
             auth: bool = True) -> httpx.Response:
        headers = {}
        if auth:
            headers["Authorization"] = f"Bearer {token or self.fake.mint()}"
        return self.client.post("/api/messages", json=body, headers=headers)

    def say(self, person: str, text: str, *, channel: bool = False) -> httpx.Response:
        where = {"conversation": CASES_CHANNEL, "conversation_type": "channel"} if channel \
            else {"conversation": f"a:dm-{OIDS[person]}"}
        return self.post(activity("message", object_id=OIDS.get(person, person),
                                  service_url=self.fake.url, text=text, **where))

    def invoke(self, person: str, name: str, value: object,
               activity_id: str | None = None) -> httpx.Response:
        return self.post(activity("invoke", object_id=OIDS.get(person, person), name=name,
                                  value=value, service_url=self.fake.url,
                                  conversation=CASES_CHANNEL, conversation_type="channel",
                                  activity_id=activity_id))

    def execute(self, person: str, data: dict[str, Any],
                activity_id: str | None = None) -> httpx.Response:
        return self.invoke(person, "adaptiveCard/action", {
            "action": {"type": "Action.Execute", "verb": "nb", "data": data},
            "trigger": "manual"}, activity_id)

    def fetch(self, person: str, data: dict[str, Any]) -> httpx.Response:
        return self.invoke(person, "task/fetch", {"data": data, "context": {"theme": "default"}})

    def submit(self, person: str, data: dict[str, Any]) -> httpx.Response:
        return self.invoke(person, "task/submit", {"data": data,
                                                   "context": {"theme": "default"}})

    def relay(self) -> None:
        """Deliver what the core queued, as the neutral delivery loop will."""
        for row in _take_pending(self.core):
            message = Message.from_dict(row.payload)
            people = {p: Recipient(p, OIDS.get(p, p), name)
                      for p, name in ((u, n) for u, n, _, _ in self.core.roster())}
            kind = DestinationKind(row.destination_kind)
            if row.message_key and row.message_key in self.posted:
                self.transport.update(posted=self.posted[row.message_key], message=message,
                                      people=people)
                continue
            if kind is DestinationKind.dm:
                recipient = people[row.destination]
                to = Address(self.transport.open_dm(recipient=recipient))
            elif kind is DestinationKind.thread:
                to = Address(CASES_CHANNEL, thread=self.roots.get(row.destination))
            else:
                to = Address(CASES_CHANNEL)
            posted = self.transport.post(to=to, message=message, outbox_id=row.id or 0,
                                         people=people)
            if kind is DestinationKind.channel and row.case_id:
                self.roots.setdefault(row.case_id, posted.ref)
            if row.message_key:
                self.posted[row.message_key] = posted


@pytest.fixture
def teams(core: Core, settings: Settings, fake: FakeTeams) -> Iterator[TeamsUser]:
    configured = settings.model_copy(update={"teams": teams_settings()})
    directory = PersonTableDirectory(core.engine, {oid: p for p, oid in OIDS.items()})
    cloud = with_overrides(PUBLIC, openid_metadata_url=fake.openid_url)
    web = FastAPI()
    app = create_app(configured, core, directory, tokens=fake.mint, cloud=cloud, fastapi=web)
    loop = Loop()
    loop.run(app.initialize())
    transport = TeamsTransport(service_url=fake.url, bot_id=APP_ID, tenant_id=TENANT,
                               token=fake.mint)
    client = Client(web, loop)
    yield TeamsUser(client, fake, core, transport)
    client.close()
    loop.close()
    transport.client.close()


def _take_pending(core: Core) -> list[OutboxMessage]:
    """Every pending outbox row, marked sent (an interim relay until Teams has its delivery loop
    wired)."""
    with transaction(core.engine) as session:
        rows = list(session.exec(select(OutboxMessage)
                                 .where(OutboxMessage.status == OutboxStatus.pending)
                                 .order_by(col(OutboxMessage.id))).all())
        for row in rows:
            row.status, row.sent_at = OutboxStatus.sent, core.clock.now()
            session.add(row)
        session.flush()
        for row in rows:
            session.expunge(row)
    return rows
