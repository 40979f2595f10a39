"""Send a request to the agency's liaison system: signed JSON over HTTPS with httpx.

Retries with exponential back-off on 5xx, timeouts and network errors; never on 4xx (the
liaison system has judged the request). The request id makes a re-send idempotent there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bot.usncb.signing import REQUEST_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    attempts: int
    error: str | None = None
    reference: str | None = None


class WebhookSender:
    def __init__(self, *, url: str, secret: str, client: httpx.Client, max_attempts: int = 4,
                 backoff_seconds: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], float] = time.time) -> None:
        self.url = url
        self.secret = secret
        self.client = client
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.now = now

    def send(self, body: dict[str, Any]) -> DeliveryResult:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        error = "not attempted"
        for attempt in range(1, self.max_attempts + 1):
            stamp = int(self.now())
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(stamp),
                       SIGNATURE_HEADER: sign(self.secret, stamp, raw),
                       REQUEST_ID_HEADER: str(body["request_id"])}
            try:
                response = self.client.post(self.url, content=raw, headers=headers)
            except httpx.TimeoutException:
                error = "timed out"
            except httpx.TransportError as exc:
                error = f"network error: {type(exc).__name__}"
            else:
                if response.is_success:
                    reference = _reference(response)
                    return DeliveryResult(True, attempt, reference=reference)
                if response.status_code < 500:
                    return DeliveryResult(False, attempt,
                                          error=f"refused: HTTP {response.status_code}")
                error = f"HTTP {response.status_code}"
            if attempt < self.max_attempts:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        return DeliveryResult(False, self.max_attempts, error=error)


def _reference(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("reference") if isinstance(data, dict) else None
    return str(value) if value else None
