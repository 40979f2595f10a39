"""Keeping the Teams SDK's signing keys fresh from a thread of its own, and keeping its token
check from ever waiting on a key fetch on the event loop.

The SDK checks each request's token with a `jwt.PyJWKClient`, which fetches the cloud's
signing keys with a blocking HTTP call whenever its cached copy (5 minutes) has expired or a
token names a key it does not hold, and it does so inside request handling, on the event loop:
every fifth minute one request stalled the whole worker for as long as the login service took
to answer. Here the keys are fetched before the copy expires (`SigningKeys`), a request's
lookup only reads the cached copy (`KeysWithoutWaiting`), and keys a token needs that are not
cached are fetched first in a thread of their own (`BotFrameworkOnly`)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import jwt
from microsoft_teams.apps import App

log = logging.getLogger(__name__)


class SigningKeys:
    def __init__(self, app: App) -> None:
        self.clients = _key_clients(app)

    @property
    def interval(self) -> float:
        """Seconds between fetches: half the cache's lifespan, so a failed fetch is tried again
        before the cached keys expire."""
        lifespans = [c.jwk_set_cache.lifespan for c in self.clients if c.jwk_set_cache]
        return max(min(lifespans, default=300.0) / 2, 0.01)

    def refresh(self) -> None:
        for client in self.clients:
            try:
                client.get_jwk_set(refresh=True)
            except Exception as error:  # any: the SDK fetches them itself, as before
                log.warning("could not fetch the Teams signing keys: %s: %s",
                            type(error).__name__, error)

    def keep_fresh(self) -> threading.Event:
        """Refreshes every `interval` in a daemon thread until the event returned is set."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(self.interval):
                self.refresh()

        threading.Thread(target=run, name="teams-signing-keys", daemon=True).start()
        return stop


class KeysWithoutWaiting(jwt.PyJWKClient):
    """The SDK's key client, split in two. The SDK's lookup (on the event loop) only ever reads
    the cached keys: PyJWT's fetched there when a key was missing, and held a lock across the
    fetch that every other lookup waited on. Fetching is `fetch_for`'s, in a thread of its own:
    one fetch at a time, and at most one every REFETCH_SECONDS, so made-up key ids (or a login
    service that does not answer) cannot keep it fetching."""

    REFETCH_SECONDS = 30.0

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri, **options)
        self._fetching = threading.Lock()
        self._fetched_at = -self.REFETCH_SECONDS

    def cached(self, kid: object) -> jwt.PyJWK | None:
        """The key `kid` names, if the cached copy (unexpired) holds it; never fetches."""
        cache = self.jwk_set_cache
        keys = cache.get() if cache is not None else None
        return None if keys is None else next((k for k in keys.keys if k.key_id == kid), None)

    def get_signing_key(self, kid: str) -> jwt.PyJWK:
        found = self.cached(kid)
        if found is None:
            raise jwt.PyJWKClientError(f"no signing key {kid!r} among the cached keys")
        return found

    def fetch_for(self, kid: object) -> bool:
        """Whether `kid` is cached once this returns, fetching the keys if it was not and the
        last fetch for a missing key was REFETCH_SECONDS ago or more. Blocks: in a thread."""
        with self._fetching:
            if self.cached(kid) is not None:
                return True  # fetched by the one before, or by the keeper
            now = time.monotonic()
            if now - self._fetched_at < self.REFETCH_SECONDS:
                return False
            self._fetched_at = now
            try:
                self.get_jwk_set(refresh=True)
            except Exception as error:  # any (a proxy's HTML page, say): the token is refused
                log.warning("could not fetch the Teams signing keys: %s: %s",
                            type(error).__name__, error)
                return False
            return self.cached(kid) is not None


class TokenCheck(Protocol):
    async def validate_token(self, raw_token: str, service_url: str | None = None
                             ) -> dict[str, Any]: ...


class BotFrameworkOnly:
    """Stands in front of the SDK's inbound token check. The Bot Connector signs every request
    with the Bot Framework's issuer for the cloud; the SDK also takes tokens from any Entra
    tenant (for Agent 365, which noticebot does not serve), and for each new tenant named in a
    token, checked or not, it fetched that tenant's keys with a blocking call on the event loop:
    anyone could stall a worker with made-up tokens. Such tokens are refused here before any
    key is looked up. For a Bot Framework token whose key is not cached (the copy expired, or
    a key just rotated in), the keys are fetched first in a thread of their own, which the
    core's work does not share; the SDK's check then finds the key cached, or the token is
    refused."""

    def __init__(self, service: TokenCheck, client: KeysWithoutWaiting, issuer: str) -> None:
        self.service, self.client, self.issuer = service, client, issuer
        self._fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="teams-keys")

    async def validate_token(self, raw_token: str, service_url: str | None = None
                             ) -> dict[str, Any]:
        if not raw_token:
            raise jwt.InvalidTokenError("No token provided")
        # Unverified, only to route: the service's check verifies all of it.
        kid = jwt.get_unverified_header(raw_token).get("kid")
        issuer = jwt.decode(raw_token, options={"verify_signature": False}).get("iss")
        if issuer != self.issuer:
            raise jwt.InvalidTokenError(f"not a Bot Framework token of this cloud: {issuer!r}")
        if self.client.cached(kid) is None and not await asyncio.get_running_loop(
                ).run_in_executor(self._fetcher, self.client.fetch_for, kid):
            raise jwt.InvalidTokenError(f"no signing key {kid!r} among the cloud's keys")
        return await self.service.validate_token(raw_token, service_url)


def guard_token_check(app: App) -> None:
    """Puts `BotFrameworkOnly` in front of the app's token check (none in unauthenticated dev
    mode): what `create_app` does to every app it builds."""
    server: Any = app.server
    validator = getattr(server, "_token_validator", None)
    service = getattr(validator, "_service_validator", None)
    client = getattr(service, "_jwks_client", None)
    issuer = getattr(getattr(service, "options", None), "valid_issuers", None)
    if validator is None:
        return
    if not (service is not None and isinstance(client, jwt.PyJWKClient)
            and isinstance(issuer, list) and len(issuer) == 1):
        # Tokens are checked, but not as the pinned version does: refuse to start blind.
        raise RuntimeError("the Teams SDK's token check is not the one this version knows")
    cache = client.jwk_set_cache
    keys = KeysWithoutWaiting(client.uri, lifespan=cache.lifespan if cache else 300,
                              cache_jwk_set=cache is not None, headers=client.headers,
                              timeout=client.timeout, ssl_context=client.ssl_context)
    service._jwks_client = keys
    server._token_validator = BotFrameworkOnly(service, keys, issuer[0])


def _key_clients(app: App) -> list[jwt.PyJWKClient]:
    """The key clients of the app's inbound token check (none in unauthenticated dev mode).
    These are the SDK's own attributes, not its API: the pinned version is tested for them."""
    validator: Any = getattr(app.server, "_token_validator", None)
    if isinstance(validator, BotFrameworkOnly):
        return [validator.client]
    service = getattr(validator, "_service_validator", None)
    client = getattr(service, "_jwks_client", None)
    if isinstance(client, jwt.PyJWKClient):
        return [client]
    if validator is not None:  # tokens are checked, but not as this version knows
        log.warning("the Teams SDK's signing-key client was not found: the SDK fetches the "
                    "keys itself, inside requests")
    return []
