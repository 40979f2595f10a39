"""Invokes whose `value` the Teams SDK cannot parse: a card action that is not an object, or
whose `action` is no `Action.Execute` with object data; a dialog fetch or submit whose value is
not an object. The SDK answers those with a 500 before any handler of ours runs, so the person
who pressed saw "Unable to reach app" and nothing was recorded. Before the SDK reads such an
activity, its value is replaced by one it parses, whose data holds what was sent: the handlers
then refuse it ("Not done: ...") and record it like any unreadable button or form."""

from __future__ import annotations

import json
from typing import Any

UNREADABLE = "nb_unreadable"  # the data key that carries what was sent, as JSON text
SHOWN_CHARACTERS = 500  # of what was sent, kept in the record


def readable(body: object) -> object:
    """The activity as sent, or with its unparseable invoke value replaced."""
    if not isinstance(body, dict) or body.get("type") != "invoke":
        return body
    name, value = body.get("name"), body.get("value")
    if name == "adaptiveCard/action":
        action = value.get("action") if isinstance(value, dict) else None
        if isinstance(action, dict) and action.get("type") == "Action.Execute" \
                and isinstance(action.get("data", {}), dict):
            return body
        data = {UNREADABLE: _shown(value)}
        return {**body, "value": {"action": {"type": "Action.Execute", "data": data},
                                  "trigger": "manual"}}
    if name in ("task/fetch", "task/submit") and "value" in body and not isinstance(value, dict):
        return {**body, "value": {"data": {UNREADABLE: _shown(value)}}}
    if name in ("task/fetch", "task/submit") and "value" not in body:
        return {**body, "value": {"data": {UNREADABLE: "no value"}}}
    return body


def _shown(value: Any) -> str:
    return json.dumps(value, default=str)[:SHOWN_CHARACTERS]
