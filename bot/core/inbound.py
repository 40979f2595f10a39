"""The shape every inbound value must have before the core acts on it or records it.

Adapters hand the core what a platform sent; a signed request can still carry an id that is a
number, a 6,000-character case id or a NUL byte (which PostgreSQL refuses to store). The
core refuses those, recorded, instead of failing inside the database (R7)."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Chat platform user ids (Slack U…/W…, Teams 29:…, console and service actors like
# usncb:liaison): short, printable, no spaces.
ACTOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
# Case ids are RN-2026-0001 and the like; anything this loose still fits every index.
CASE_ID = re.compile(r"[A-Z0-9][A-Z0-9-]{0,31}")
INVALID_ACTOR = "unidentified"  # who a refused request is recorded as when its id is unusable
SHOWN = 80  # how much of a refused value is kept on the record


def actor_problem(value: object) -> str | None:
    """Why `value` cannot be an actor id, or None when it can."""
    if not isinstance(value, str):
        return f"the user id must be a string, not {type(value).__name__}"
    if not ACTOR_ID.fullmatch(value):
        return "the user id is not of the expected shape"
    return None


def case_id_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"a case id must be a string, not {type(value).__name__}"
    if not CASE_ID.fullmatch(value.strip().upper()):
        return "that is not a case id (they look like RN-2026-0001)"
    return None


def has_nul(value: object) -> bool:
    """Whether a NUL character hides anywhere in `value` (PostgreSQL text cannot hold one)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(has_nul(v) for v in value)
    return False


def shown(value: object) -> str:
    """A refused value as it may be kept on the record: typed, cut short, storable."""
    text = repr(value)
    if len(text) > SHOWN:
        text = text[:SHOWN] + f"… ({len(text)} characters)"
    return text.replace("\x00", "\\x00")
