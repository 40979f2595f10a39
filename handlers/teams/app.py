"""The Teams SDK app: every request's Bot Framework token is checked by the SDK (issuer and
audience of the configured cloud, expiry, signature against the cloud's OpenID keys, and the
`serviceurl` claim against the activity), then routed to `Interactions` off the event loop.

No global App: `create_app` builds one from settings and a core."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, cast

import httpx
from fastapi import FastAPI, Request, Response
from microsoft_teams.api.activities import (
    AdaptiveCardInvokeActivity,
    MessageActivity,
    MessageActivityInput,
)
from microsoft_teams.api.activities.invoke.task import (
    TaskFetchInvokeActivity,
    TaskSubmitInvokeActivity,
)
from microsoft_teams.api.auth.cloud_environment import CloudEnvironment
from microsoft_teams.api.auth.credentials import TokenProvider
from microsoft_teams.api.models import (
    AdaptiveCardActionMessageResponse,
    Attachment,
    CardTaskModuleTaskInfo,
    TaskModuleContinueResponse,
    TaskModuleMessageResponse,
    TaskModuleResponse,
)
from microsoft_teams.apps import ActivityContext, App, FastAPIAdapter
from microsoft_teams.apps.http.adapter import HttpRequest, HttpResponse
from microsoft_teams.common import ClientOptions

from bot.clock import Clock
from bot.core.service import Core
from bot.ops.probes import Readiness
from config.settings import Settings
from handlers.ops import PATHS, ops_response
from handlers.teams import cards
from handlers.teams.checks import TeamsSettingsError as TeamsSettingsError
from handlers.teams.checks import check_settings as check_settings
from handlers.teams.clouds import environment
from handlers.teams.inbound import Interactions, Reply
from handlers.teams.keys import guard_token_check
from handlers.teams.shapes import readable
from handlers.teams.transport import TokenSource, retry_after, transient

log = logging.getLogger(__name__)


def sdk_token(tokens: TokenSource) -> TokenProvider:
    """The SDK's outbound token (replies to a command) from our MSAL source: the same
    authority and cloud scope as the transport, a certificate included."""
    async def token(scope: str | list[str], tenant_id: str | None = None) -> str:
        return await asyncio.to_thread(tokens)

    return token


def _sender(activity: Any) -> tuple[str | None, str | None]:
    sender = activity.from_
    return getattr(sender, "aad_object_id", None), getattr(sender, "id", None)


def _mentioned_users(activity: Any) -> dict[str, str]:
    """Each user mention's text (`<at>Dee Designee</at>`) -> their Entra object id, where Teams
    gives one; the bot's own mention and any without an object id are left out."""
    bot_id = getattr(activity.recipient, "id", None)
    found = {}
    for entity in activity.entities or ():
        mentioned = getattr(entity, "mentioned", None)
        object_id = getattr(mentioned, "aad_object_id", None)
        if entity.type == "mention" and object_id and getattr(mentioned, "id", None) != bot_id:
            found[str(entity.text)] = str(object_id)
    return found


# The answer to a typed message is sent while Teams waits for the message's HTTP answer, 15 s
# at most: it is given up ANSWER_SECONDS after the message arrived (the core's work included).
# Each activity is tried REPLY_ATTEMPTS times with at most REPLY_WAIT seconds of waiting in
# all, each request given REQUEST_SECONDS (the SDK's own client has no time limit).
ANSWER_SECONDS = 12.0
REPLY_ATTEMPTS = 3
REPLY_WAIT = 4.0
REQUEST_SECONDS = 5.0


async def send_reply(sends: Sequence[Callable[[], Awaitable[object]]], *, until: float,
                     sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """A reply's activities, in order, by the delivery loop's rules for Teams: a refusal for
    now (429 and 412, a server error: `transient`) or a lost connection is tried again after
    `Retry-After` when given, else after 0.5 s, then 1 s. Any other refusal, a wait beyond
    what is left, or the event loop's clock passing `until` raises. A server error or a lost
    answer may have delivered the activity: it can then show twice, which beats not at all."""
    waited = 0.0
    last: httpx.HTTPError
    async with asyncio.timeout_at(until):
        for send in sends:
            back_off = 0.5
            for attempt in range(1, REPLY_ATTEMPTS + 1):
                try:
                    await send()
                    break
                except httpx.HTTPStatusError as error:
                    if not transient(error.response.status_code) or attempt == REPLY_ATTEMPTS:
                        raise
                    asked, last = retry_after(error.response), error
                    wait = back_off if asked is None else asked.total_seconds()
                except httpx.TransportError as error:
                    if attempt == REPLY_ATTEMPTS:
                        raise
                    wait, last = back_off, error
                if waited + wait > REPLY_WAIT:
                    raise TimeoutError(f"{wait:.1f} s more to wait is more than the answer "
                                       "to a message may take") from last
                await sleep(wait)
                waited, back_off = waited + wait, back_off * 2


def _post(reply: Reply) -> list[MessageActivityInput]:
    # A card's gist as its summary (notifications), not as text shown above it.
    out = [MessageActivityInput(summary=reply.text or "noticebot").add_attachments(
        Attachment(content_type=cards.CONTENT_TYPE, content=card)) for card in reply.cards]
    if reply.text and not reply.cards:
        out.append(MessageActivityInput(text=reply.text))
    return out


def _task(reply: Reply) -> TaskModuleResponse:
    if reply.dialog is None:
        return TaskModuleResponse(task=TaskModuleMessageResponse(value=reply.text or "Done."))
    info = CardTaskModuleTaskInfo(title=reply.title[:60], card=Attachment(
        content_type=cards.CONTENT_TYPE, content=reply.dialog))
    return TaskModuleResponse(task=TaskModuleContinueResponse(value=info))


def create_app(settings: Settings, core: Core, *,
               tokens: TokenSource | None = None, cloud: CloudEnvironment | None = None,
               fastapi: FastAPI | None = None) -> App:
    """`cloud` overrides the settings' preset (tests point its OpenID metadata at a loopback
    fake); `tokens` replaces MSAL for outbound replies."""
    check_settings(settings)
    teams = settings.teams
    if tokens is None and not teams.allow_unauthenticated:
        from handlers.teams.transport import msal_tokens
        tokens = msal_tokens(teams)
    web = fastapi or FastAPI()
    app = App(client_id=teams.client_id or None, tenant_id=teams.tenant_id or None,
              token=sdk_token(tokens) if tokens is not None else None,
              cloud=cloud or environment(teams.cloud),
              service_url=teams.fallback_service_url(),
              dangerously_allow_unauthenticated_requests=teams.allow_unauthenticated,
              client=ClientOptions(timeout=REQUEST_SECONDS),
              http_server_adapter=FastAPIAdapter(app=web))
    register(app, Interactions(core))
    return app


async def initialize(app: App) -> None:
    """The SDK app's start-up (which builds its token check and registers its route), then
    `BotFrameworkOnly` in front of that check: how every app `create_app` built is started.
    Before it, the route's handler is wrapped so that the SDK only ever reads invokes it can
    parse (`shapes.readable`): the route takes the handler as start-up finds it."""
    server: Any = app.server
    handle = server.handle_request

    async def handle_readable(request: HttpRequest) -> HttpResponse:
        return cast(HttpResponse, await handle({**request, "body": readable(request["body"])}))

    server.handle_request = handle_readable
    await app.initialize()
    guard_token_check(app)


def add_ops(web: FastAPI, *, readiness: Readiness, clock: Clock) -> None:
    """`/livez`, `/readyz`, `/healthz` and `/metrics`, answered as `serve` answers them."""
    async def probe(request: Request) -> Response:
        said: dict[str, Any] = {}

        def start(status: str, headers: list[tuple[str, str]]) -> None:
            said.update(status=status, headers=headers)

        environ = {"PATH_INFO": request.url.path, "REQUEST_METHOD": request.method}
        body = await asyncio.to_thread(lambda: b"".join(
            ops_response(environ, start, readiness=readiness, clock=clock) or []))
        return Response(body, status_code=int(str(said["status"]).split(" ", 1)[0]),
                        headers=dict(said["headers"]))

    for path in PATHS:
        web.add_api_route(path, probe, methods=["GET", "HEAD"])


def register(app: App, act: Interactions) -> None:
    pending: set[asyncio.Task[int]] = set()

    def deliver_usncb() -> None:
        # As on Slack: a webhook request the interaction queued goes out after the answer.
        if act.core.usncb_sender is None:
            return  # manual USNCB channel: nothing to send
        task = asyncio.ensure_future(asyncio.to_thread(act.core.deliver_usncb))
        pending.add(task)
        task.add_done_callback(pending.discard)

    @app.on_message
    async def message(ctx: ActivityContext[MessageActivity]) -> None:
        arrived = asyncio.get_running_loop().time()
        activity = ctx.activity
        object_id, teams_id = _sender(activity)
        conversation = activity.conversation
        reply = await asyncio.to_thread(
            act.message, text=activity.text or "", object_id=object_id, teams_id=teams_id,
            conversation=conversation.id,
            personal=conversation.conversation_type == "personal",
            mentions=_mentioned_users(activity), activity_id=activity.id)
        if reply is None:
            return
        try:
            await send_reply([partial(ctx.send, outgoing) for outgoing in _post(reply)],
                             until=arrived + ANSWER_SECONDS)
        except Exception as error:  # the core's part is committed; a lost reply is logged
            log.warning("could not answer a Teams message in %s: %s %s", conversation.id,
                        type(error).__name__, error)
        deliver_usncb()

    @app.on_card_action_execute
    async def execute(ctx: ActivityContext[AdaptiveCardInvokeActivity]
                      ) -> AdaptiveCardActionMessageResponse:
        activity = ctx.activity
        object_id, teams_id = _sender(activity)
        reply = await asyncio.to_thread(
            act.click, data=activity.value.action.data, object_id=object_id,
            teams_id=teams_id, activity_id=activity.id)
        deliver_usncb()
        return AdaptiveCardActionMessageResponse(value=reply.text or "Done.")

    @app.on_dialog_open
    async def dialog_open(ctx: ActivityContext[TaskFetchInvokeActivity]) -> TaskModuleResponse:
        activity = ctx.activity
        object_id, teams_id = _sender(activity)
        reply = await asyncio.to_thread(
            act.dialog_open, data=activity.value.data if activity.value else None,
            object_id=object_id, teams_id=teams_id, activity_id=activity.id,
            conversation=activity.conversation.id)
        deliver_usncb()
        return _task(reply)

    @app.on_dialog_submit
    async def dialog_submit(ctx: ActivityContext[TaskSubmitInvokeActivity]
                            ) -> TaskModuleResponse:
        activity = ctx.activity
        object_id, teams_id = _sender(activity)
        reply = await asyncio.to_thread(
            act.dialog_submit, data=activity.value.data if activity.value else None,
            object_id=object_id, teams_id=teams_id, conversation=activity.conversation.id)
        deliver_usncb()
        return _task(reply)
