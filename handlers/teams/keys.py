"""Keeping the Teams SDK's signing keys fresh from a thread of its own, and keeping its token
check from fetching keys on the event loop.

The SDK checks each request's token with a `jwt.PyJWKClient`, which fetches the cloud's
signing keys with a blocking HTTP call whenever its cached copy (5 minutes) has expired, and it
does so inside request handling, on the event loop: every fifth minute one request stalls the
whole worker for as long as the login service takes to answer. Fetching them here before the
copy expires means the loop always finds them cached (a key Microsoft has just rotated in is
still fetched by the SDK itself, once)."""

from __future__ import annotations

import asyncio
import logging
import threading
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


class TokenCheck(Protocol):
    async def validate_token(self, raw_token: str, service_url: str | None = None
                             ) -> dict[str, Any]: ...


class BotFrameworkOnly:
    """Stands in front of the SDK's inbound token check. The Bot Connector signs every request
    with the Bot Framework's issuer for the cloud; the SDK also takes tokens from any Entra
    tenant (for Agent 365, which noticebot does not serve), and for each new tenant named in a
    token, checked or not, it fetched that tenant's keys with a blocking call on the event loop:
    anyone could stall a worker with made-up tokens. Such tokens are refused here before any
    key is looked up, and a Bot Framework token whose key is not cached (expired, or a key just
    rotated in) is checked in a thread, so its fetch never holds up the loop."""

    def __init__(self, service: TokenCheck, client: jwt.PyJWKClient, issuer: str) -> None:
        self.service, self.client, self.issuer = service, client, issuer

    async def validate_token(self, raw_token: str, service_url: str | None = None
                             ) -> dict[str, Any]:
        if not raw_token:
            raise jwt.InvalidTokenError("No token provided")
        # Unverified, only to route: the service's check verifies all of it.
        header = jwt.get_unverified_header(raw_token)
        issuer = jwt.decode(raw_token, options={"verify_signature": False}).get("iss")
        if issuer != self.issuer:
            raise jwt.InvalidTokenError(f"not a Bot Framework token of this cloud: {issuer!r}")
        if self._cached(header.get("kid")):
            return await self.service.validate_token(raw_token, service_url)
        return await asyncio.to_thread(
            lambda: asyncio.run(self.service.validate_token(raw_token, service_url)))

    def _cached(self, kid: object) -> bool:
        cache = self.client.jwk_set_cache
        keys = cache.get() if cache is not None else None
        return keys is not None and any(key.key_id == kid for key in keys.keys)


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
    server._token_validator = BotFrameworkOnly(service, client, issuer[0])


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
