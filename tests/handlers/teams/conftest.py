"""A Teams user in front of `noticebot teams`: signed activities posted to /api/messages of the
real SDK app (in process), Microsoft's side faked on loopback (fake_teams.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from microsoft_teams.api.auth.cloud_environment import PUBLIC, with_overrides
from microsoft_teams.apps import App
from pydantic import SecretStr
from sqlmodel import Session, col, select

from bot.app import build_core
from bot.core.service import Core
from config.platforms import Platform
from config.settings import Settings
from config.teams import TeamsSettings
from handlers.teams.app import create_app, initialize
from handlers.teams.relay import TeamsRelay
from handlers.teams.transport import TeamsTransport
from storage.db import transaction
from storage.models import AorChannel, PersonIdentity, PlatformMessage
from tests.handlers.teams.fake_teams import APP_ID, TENANT, FakeTeams, activity
from tests.helpers import DESIGNEE, FRO, MANAGER, OFFICER, OFFICER_LAPSED

T = TypeVar("T")

# Entra object ids for the sample roster's people (their Teams identities).
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
    """Posts activities as a given person; `relay` runs the real Teams delivery loop over the
    fake connector (post, thread reply, update in place, 1:1 chats)."""

    client: Client
    fake: FakeTeams
    core: Core
    relay_loop: TeamsRelay
    app: App

    @property
    def transport(self) -> TeamsTransport:
        return self.relay_loop.teams

    @property
    def roots(self) -> dict[str, str]:
        """Each case's root card in the AOR channel, as the loop remembered it."""
        with Session(self.core.engine) as session:
            found = session.exec(select(PlatformMessage).where(
                PlatformMessage.platform == Platform.teams.value,
                col(PlatformMessage.message_key).endswith(":root"))).all()
        return {row.message_key.removesuffix(":root"): row.ts for row in found}

    def post(self, body: dict[str, Any], *, token: str | None = None,
             auth: bool = True) -> httpx.Response:
        headers = {}
        if auth:
            headers["Authorization"] = f"Bearer {token or self.fake.mint()}"
        return self.client.post("/api/messages", json=body, headers=headers)

    def say(self, person: str, text: str, *, channel: bool = False,
            entities: list[dict[str, Any]] | None = None,
            activity_id: str | None = None) -> httpx.Response:
        where = {"conversation": CASES_CHANNEL, "conversation_type": "channel"} if channel \
            else {"conversation": f"a:dm-{OIDS[person]}"}
        return self.post(activity("message", object_id=OIDS.get(person, person),
                                  service_url=self.fake.url, text=text, entities=entities,
                                  activity_id=activity_id, **where))

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

    def relay(self) -> int:
        """Deliver every due Teams row of the outbox, as `noticebot teams` does."""
        delivered = 0
        while (batch := self.relay_loop.drain(limit=500)) > 0:
            delivered += batch
        return delivered


def with_teams_identities(core: Core, fake: FakeTeams) -> None:
    """The sample roster's people and Houston AOR on Teams, as `teams = "<object id>"` and
    `[aor.teams]` in a roster give them."""
    with transaction(core.engine) as session:
        for person, oid in OIDS.items():
            session.add(PersonIdentity(user_id=person, platform=Platform.teams,
                                       external_id=oid))
        session.add(AorChannel(aor_id="HOU", platform=Platform.teams,
                               conversation=CASES_CHANNEL, team="19:houteam@thread.tacv2",
                               service_url=fake.url))


def teams_relay_for(core: Core, fake: FakeTeams, **options: Any) -> TeamsRelay:
    transport = TeamsTransport(service_url=fake.url, bot_id=APP_ID, tenant_id=TENANT,
                               token=fake.mint)
    values: dict[str, Any] = {"pace": 0.0, "linger": 0.0, "concurrency": 1, **options}
    return TeamsRelay(engine=core.engine, transport=transport, clock=core.clock, **values)


@pytest.fixture
def teams(core: Core, settings: Settings, fake: FakeTeams) -> Iterator[TeamsUser]:
    configured = settings.model_copy(update={"teams": teams_settings(),
                                             "platforms": (Platform.teams,)})
    with_teams_identities(core, fake)
    # The app's core queues Teams rows (NOTICEBOT_PLATFORMS=teams); the tests' `core` reads
    # the same database.
    teams_core = build_core(configured, clock=core.clock, engine=core.engine)
    cloud = with_overrides(PUBLIC, openid_metadata_url=fake.openid_url)
    web = FastAPI()
    app = create_app(configured, teams_core, tokens=fake.mint,
                     cloud=cloud, fastapi=web)
    loop = Loop()
    loop.run(initialize(app))
    relay = teams_relay_for(core, fake)
    client = Client(web, loop)
    yield TeamsUser(client, fake, core, relay, app)
    client.close()
    loop.close()
    relay.teams.client.close()
