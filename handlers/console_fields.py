"""How the console asks and shows a form's fields: which it fills in without asking, and how
an answer reads and travels to the core."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.core.forms import FieldError, check_field
from bot.messages import FieldKind, FormField


def quiet_field(spec: FormField) -> bool:
    """Filled in without asking: a default the person can see, or optional free text."""
    return bool(spec.initial) or (not spec.required
                                  and spec.kind in (FieldKind.text, FieldKind.long_text))


def default_answer(spec: FormField, today: date) -> Any:
    try:
        return check_field(spec, spec.initial, today=today)
    except FieldError:
        return None


def describe_answer(spec: FormField, value: Any) -> str:
    if value is None or value == []:
        return "none"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    labels = {o.value: o.label for o in spec.options}
    if isinstance(value, list):
        return ", ".join(labels.get(str(v), str(v)) for v in value)
    return labels.get(str(value), str(value))


def wire_value(value: Any) -> object:
    """A cleaned answer as the core receives it from any surface."""
    if isinstance(value, date):
        return value.isoformat()
    return value
