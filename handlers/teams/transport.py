"""The Teams transport for the neutral delivery loop: three Bot Connector REST calls over a sync
`httpx.Client`, with a token from MSAL client credentials (secret or certificate).

It turns one call into one request and says how it went; the loop owns retries, pacing and
dead letters. Teams cannot look up a message it was sent (no metadata, no idempotency key), so
`can_find` is False: a post whose answer was lost (a timeout, a 5xx) may have landed, and
re-sending it can duplicate it (see README, "Connect to Teams")."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msal
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from bot.delivery.port import Address, Dead, Pacing, Platform, Posted, Recipient, Retry
from bot.messages import Message, mentioned_in
from config.teams import TeamsSettings, host_of
from handlers.teams import cards
from handlers.teams.clouds import environment

log = logging.getLogger(__name__)

TokenSource = Callable[[], str]

# A team channel's (or group chat's) conversation id; a 1:1 chat's starts "a:".
CHANNEL_PREFIX = "19:"

# Teams allows a bot 7 messages a second per thread, 60 per 30 s, and 50 requests a second per
# tenant: 0.5 s between posts keeps a busy thread under the 30-second window, and 45/s leaves
# the tenant some room for the inbound side's replies.
PACING = Pacing(per_conversation=0.5, per_second=45.0)
# A login service that never answers must not hold a delivery thread (and its claim, whose
# lease is 60 s) for ever: MSAL's own requests have no time limit unless given one.
TOKEN_SECONDS = 10.0
# The request never reached a Bot Connector that could act on it.
NOT_LANDED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def transient(status: int) -> bool:
    """Whether Teams may take later what it refused with `status`: 429 and 412 (refused before
    acting), and any server error (which may have acted). 401 is the credentials', apart."""
    return status in (412, 429) or status >= 500


class TokenError(Exception):
    pass


def msal_tokens(settings: TeamsSettings, *, http_client: Any = None) -> TokenSource:
    """Bot tokens for the settings' cloud: its authority and its Bot Framework scope. MSAL
    caches the token and renews it before it expires; it is thread-safe."""
    cloud = environment(settings.cloud)
    credential: str | dict[str, str]
    if settings.certificate_file:
        pem = Path(settings.certificate_file).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        credential = {"private_key": pem.decode(),
                      "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),  # Entra names it so
                      "public_certificate": cert.public_bytes(Encoding.PEM).decode()}
    else:
        credential = settings.client_secret.get_secret_value()
    options: dict[str, Any] = {"http_client": http_client} if http_client is not None else {}
    made: list[msal.ConfidentialClientApplication] = []
    lock = threading.Lock()

    def token() -> str:
        with lock:  # built on first use: starting never waits on the login service
            if not made:
                made.append(msal.ConfidentialClientApplication(
                    settings.client_id, authority=settings.login_authority(),
                    client_credential=credential, timeout=TOKEN_SECONDS, **options))
        result = made[0].acquire_token_for_client(scopes=[cloud.bot_scope])
        if "access_token" not in result:
            raise TokenError(f"{result.get('error')}: {result.get('error_description', '')}"[:300])
        return str(result["access_token"])

    return token


def retry_after(response: httpx.Response, *, now: datetime | None = None
                ) -> timedelta | None:
    """`Retry-After` in seconds or as an HTTP date (RFC 9110 allows both), kept within an
    hour; None when absent or unreadable (the loop's own back-off applies)."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC by the RFC
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):  # "nan", "inf": unreadable
        return None
    return timedelta(seconds=min(max(seconds, 0.0), 3600.0))


class TeamsTransport:
    platform = Platform.teams
    pacing = PACING
    can_find = False

    def __init__(self, *, service_url: str, bot_id: str, tenant_id: str, token: TokenSource,
                 client: httpx.Client | None = None,
                 service_url_for: Callable[[str], str | None] | None = None,
                 service_hosts: frozenset[str] = frozenset()) -> None:
        self.service_url = service_url.rstrip("/")
        # Where the bot's token may go: these and the fallback's host, never a host a roster
        # names by mistake (or on purpose).
        self.service_hosts = service_hosts | {host_of(self.service_url)}
        self.bot_id = bot_id
        self.tenant_id = tenant_id
        self.token = token
        self.client = client or httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0))
        self.service_url_for = service_url_for

    def _base(self, conversation: str) -> str:
        found = self.service_url_for(conversation) if self.service_url_for else None
        if found and host_of(found) not in self.service_hosts:
            # A roster's service_url for the wrong cloud, or a typo: told to the admins as a
            # dead letter, instead of retried for ever (and never given the bot's token).
            raise Dead(f"service_url_not_allowed: {host_of(found) or found} is not this "
                       "cloud's Bot Connector (see NOTICEBOT_TEAMS_SERVICE_URL)")
        return (found or self.service_url).rstrip("/")

    def _call(self, method: str, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            token = self.token()
            # No token only in development without Azure (NOTICEBOT_TEAMS_ALLOW_UNAUTHENTICATED).
            headers = {"Authorization": f"Bearer {token}"} if token else {}
        except Exception as error:  # a token we could not get: nothing was sent
            raise Retry(f"token: {error}"[:200], uncertain=False, credentials=True) from None
        try:
            response = self.client.request(method, url, json=dict(body), headers=headers)
        except NOT_LANDED as error:
            raise Retry(f"unreachable: {type(error).__name__}", uncertain=False) from None
        except httpx.TransportError as error:  # timed out or cut off after sending
            raise Retry(f"no answer: {type(error).__name__}", uncertain=True) from None
        status = response.status_code
        if status < 300:
            try:
                answer = response.json() if response.content else {}
            except ValueError:
                answer = {}
            return answer if isinstance(answer, dict) else {}
        code = f"{status} {response.text[:120]}".strip()
        if transient(status):
            # A server error may have passed the post on; 429 and 412 were refused before.
            raise Retry(code, uncertain=status >= 500, delay=retry_after(response))
        if status == 401:  # the token was refused: no message goes until it is mended
            raise Retry(code, uncertain=False, delay=retry_after(response), credentials=True)
        raise Dead(code)  # 400 (bad card), 403 (not installed there), 404 (gone), ...

    def _activity(self, message: Message, people: Mapping[str, Recipient], *,
                  mention: bool) -> dict[str, Any]:
        """`mention`: the people the card names are mentioned (notified), not only named."""
        def name(person_id: str) -> str:
            found = people.get(person_id)
            return found.name if found is not None else "someone"

        mentions = cards.Mentions(people, name) if mention else None
        # `summary`, not `text`: Teams shows a message's text above its card (the title twice)
        # and uses the summary for notifications and the activity feed.
        return {"type": "message", "summary": cards.summary(message, name),
                "attachments": [cards.attachment(cards.message_card(message, name,
                                                                    mentions=mentions))]}

    def post(self, *, to: Address, message: Message, outbox_id: int,
             people: Mapping[str, Recipient]) -> Posted:
        conversation = to.conversation if to.thread is None \
            else f"{to.conversation};messageid={to.thread}"
        url = f"{self._base(to.conversation)}/v3/conversations/{quote(conversation, safe='')}" \
              "/activities"
        # Mentions only in a new post, and only in a channel: a person named in someone
        # else's 1:1 chat is not in it, and an update in place names people plainly, so
        # that it cannot notify them again.
        mention = to.conversation.startswith(CHANNEL_PREFIX) and any(
            person in people for person in mentioned_in(message))
        try:
            answer = self._call("POST", url, self._activity(message, people, mention=mention))
        except Dead as refused:
            if not (mention and refused.code.startswith("400")):
                raise
            # A mention Teams will not take (a person who left the tenant) must not cost
            # the post: it goes again naming people plainly.
            log.warning("Teams refused a post's mentions (%s): sent without them", refused.code)
            answer = self._call("POST", url, self._activity(message, people, mention=False))
        ref = answer.get("id")
        if not isinstance(ref, str) or not ref:
            raise Retry("posted, but Teams gave no activity id", uncertain=True)
        return Posted(conversation=conversation, ref=ref)

    def update(self, *, posted: Posted, message: Message,
               people: Mapping[str, Recipient]) -> None:
        base = self._base(posted.conversation.split(";", 1)[0])
        url = (f"{base}/v3/conversations/{quote(posted.conversation, safe='')}/activities/"
               f"{quote(posted.ref, safe='')}")
        self._call("PUT", url, {**self._activity(message, people, mention=False),
                                "id": posted.ref})

    def open_dm(self, *, recipient: Recipient) -> str:
        """Teams answers the same 1:1 conversation for the same person; the delivery loop keeps
        it (`dm_conversation`), so this is asked once per person."""
        body = {"bot": {"id": f"28:{self.bot_id}"}, "members": [{"id": recipient.identity}],
                "isGroup": False, "tenantId": self.tenant_id,
                "channelData": {"tenant": {"id": self.tenant_id}}}
        answer = self._call("POST", f"{self.service_url}/v3/conversations", body)
        conversation = answer.get("id")
        if not isinstance(conversation, str) or not conversation:
            raise Retry("Teams gave no conversation id", uncertain=False)
        return conversation

    def find(self, *, to: Address, outbox_id: int) -> str | None:
        return None  # Teams has no way to look a sent message up


def transport_from(settings: TeamsSettings, *, token: TokenSource | None = None,
                   client: httpx.Client | None = None) -> TeamsTransport:
    if token is None:
        token = (lambda: "") if settings.allow_unauthenticated else msal_tokens(settings)
    return TeamsTransport(service_url=settings.fallback_service_url(), bot_id=settings.client_id,
                          tenant_id=settings.tenant_id, token=token, client=client,
                          service_hosts=settings.service_hosts())
