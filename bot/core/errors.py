"""Exceptions the core raises to end an interaction without a state change."""

from __future__ import annotations

from bot.messages import RefusalCode


class Refused(Exception):
    """The actor may not do this now. `reason` is shown to them and recorded."""

    def __init__(self, reason: str, *, code: RefusalCode = RefusalCode.refused) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class FormErrors(Exception):
    """Bad form input: errors by field name, shown inline; nothing is written but the record."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
