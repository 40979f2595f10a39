"""HMAC-SHA256 over `v1:{timestamp}:{body}`, the same scheme both ways (requests we send and
callbacks we receive), with a 5-minute replay window."""

from __future__ import annotations

import hashlib
import hmac

VERSION = "v1"
REPLAY_WINDOW_SECONDS = 300
SIGNATURE_HEADER = "X-Noticebot-Signature"
TIMESTAMP_HEADER = "X-Noticebot-Timestamp"
REQUEST_ID_HEADER = "X-Noticebot-Request-Id"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, *, timestamp: str | None, signature: str | None, body: bytes,
           now: float) -> bool:
    """True when the signature matches and the timestamp is within the replay window."""
    # Headers of any other shape fail here instead of raising further down (R9): int() takes
    # non-ASCII digits, and compare_digest refuses non-ASCII text.
    if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if len(timestamp) > 12 or abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body).encode(),
                               signature.encode("utf-8", "replace"))
