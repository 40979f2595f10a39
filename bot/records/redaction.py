"""Redaction for exports shared outside the records office: subject details and free text
replaced in payloads, and each case's own subject values scrubbed wherever else they appear."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from bot.core.details import open_case_details
from storage.models import Case
from storage.sealed import SUBJECT_FIELDS
from storage.vault import Vault, VaultError

REDACTED = "[redacted]"
FREE_TEXT_FIELDS = ("note", "notes", "justification", "reason", "dismissal_note", "provided",
                    "necessity", "doj_coordination", "text")
REDACTED_KEYS = frozenset(SUBJECT_FIELDS) | frozenset(FREE_TEXT_FIELDS)
# A known subject value this long or longer is also scrubbed where it appears inside other text
# (a private message's fields, a request's text); a shorter one only where it is a whole value.
MIN_SCRUBBED_SUBSTRING = 4


class RedactionError(Exception):
    """A case's subject details cannot be read, so they cannot be scrubbed."""


@dataclass
class Redactor:
    """Replaces subject details and free text in payloads; scrubs each case's own subject
    values wherever else they appear in that case's entries."""

    session: Session
    vault: Vault
    known: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def payload(self, payload: dict[str, Any], case_id: str | None) -> dict[str, Any]:
        values = self._values(case_id) if case_id else ()
        redacted: dict[str, Any] = redact(payload, values)
        return redacted

    def _values(self, case_id: str) -> tuple[str, ...]:
        if case_id not in self.known:
            self.known[case_id] = self._load(case_id)
        return self.known[case_id]

    def _load(self, case_id: str) -> tuple[str, ...]:
        case = self.session.get(Case, case_id)
        if case is None or case.disposed_at is not None:
            return ()
        try:
            details = open_case_details(self.vault, case)
        except VaultError as exc:
            raise RedactionError(f"case {case_id}: subject details cannot be decrypted ({exc}); "
                              "a redacted export needs them to scrub") from None
        found: set[str] = set()
        for name in SUBJECT_FIELDS:
            whole = str(getattr(details, name)).strip()
            found.add(whole)
            # Each part of a list ("DOB 1979-02-03, A-123-456-789") is a detail on its own.
            parts = (part.strip() for part in re.split(r"[,;\n]", whole))
            found.update(part for part in parts if len(part) >= MIN_SCRUBBED_SUBSTRING)
        return tuple(sorted((v for v in found if v), key=len, reverse=True))


def redact(value: Any, known: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {key: (REDACTED if key in REDACTED_KEYS and value[key] not in (None, "")
                      else redact(value[key], known)) for key in value}
    if isinstance(value, list):
        return [redact(item, known) for item in value]
    if isinstance(value, str):
        return _scrub(value, known)
    return value


def _scrub(text: str, known: tuple[str, ...]) -> str:
    folded = text.strip().casefold()
    for value in known:
        if folded == value.casefold():
            return REDACTED
    for value in known:
        if len(value) >= MIN_SCRUBBED_SUBSTRING and value.casefold() in text.casefold():
            text = re.sub(re.escape(value), REDACTED, text, flags=re.IGNORECASE)
    return text
