"""Invokes whose `value` the Teams SDK cannot parse: a card action that is no `Action.Execute`
with data, a dialog fetch or submit whose value is missing or not a task request. The SDK
answers those with a 500 before any handler of ours runs, so the person who pressed saw
"Unable to reach app" and nothing was recorded. Before the SDK reads such an activity, its value
is replaced by one it parses, whose data holds what was sent: the handlers then refuse it
("Not done: ...") and record it like any unreadable button or form. The SDK's own models of
those values decide what it can parse."""

from __future__ import annotations

import json
from typing import Any

from microsoft_teams.api.models.adaptive_card.adaptive_card_invoke_value import (
    AdaptiveCardInvokeValue,
)
from microsoft_teams.api.models.task_module.task_module_request import TaskModuleRequest
from pydantic import BaseModel, ValidationError

UNREADABLE = "nb_unreadable"  # the data key that carries what was sent, as JSON text
SHOWN_CHARACTERS = 500  # of what was sent, kept in the record
DIALOG_INVOKES = ("task/fetch", "task/submit")


def readable(body: object) -> object:
    """The activity as sent, or with its unparseable invoke value replaced."""
    if not isinstance(body, dict) or body.get("type") != "invoke":
        return body
    name, value = body.get("name"), body.get("value", ...)
    if name == "adaptiveCard/action":
        # Our cards send only Action.Execute; anything else would be answered by no handler.
        action = value.get("action") if isinstance(value, dict) else None
        if _parses(AdaptiveCardInvokeValue, value) and isinstance(action, dict) \
                and action.get("type") == "Action.Execute":
            return body
        data = {UNREADABLE: _shown(value)}
        return {**body, "value": {"action": {"type": "Action.Execute", "data": data},
                                  "trigger": "manual"}}
    if name in DIALOG_INVOKES and not _parses(TaskModuleRequest, value):
        return {**body, "value": {"data": {UNREADABLE: _shown(value)}}}
    return body


def _parses(model: type[BaseModel], value: Any) -> bool:
    if value is ...:
        return False
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def _shown(value: Any) -> str:
    return "no value" if value is ... else json.dumps(value, default=str)[:SHOWN_CHARACTERS]
