"""Keeping the Teams SDK's signing keys fresh from a thread of its own.

The SDK checks each request's token with a `jwt.PyJWKClient`, which fetches the cloud's
signing keys with a blocking HTTP call whenever its cached copy (5 minutes) has expired, and it
does so inside request handling, on the event loop: every fifth minute one request stalls the
whole worker for as long as the login service takes to answer. Fetching them here before the
copy expires means the loop always finds them cached (a key Microsoft has just rotated in is
still fetched by the SDK itself, once)."""

from __future__ import annotations

import logging
import threading
from typing import Any

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


def _key_clients(app: App) -> list[jwt.PyJWKClient]:
    """The key clients of the app's inbound token check (none in unauthenticated dev mode).
    These are the SDK's own attributes, not its API: the pinned version is tested for them."""
    validator: Any = getattr(app.server, "_token_validator", None)
    service = getattr(validator, "_service_validator", None)
    client = getattr(service, "_jwks_client", None)
    if isinstance(client, jwt.PyJWKClient):
        return [client]
    if validator is not None:  # tokens are checked, but not as this version knows
        log.warning("the Teams SDK's signing-key client was not found: the SDK fetches the "
                    "keys itself, inside requests")
    return []
