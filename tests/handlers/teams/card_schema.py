"""Two checks of Adaptive Cards, both run by `problems`:

- structural, written here: only the 1.5 schema's element and action types that noticebot uses,
  the properties each allows and those it requires (the schema file itself is not available
  offline);
- declared, by Microsoft: each element and action validated against its model in the Teams
  SDK's card declarations (`microsoft_teams.cards`, generated from the Adaptive Card schema as
  Teams implements it), which rejects a property it does not declare and a value outside a
  property's declared type or choices (a colour, a style, a size)."""

from __future__ import annotations

from functools import cache
from typing import Any

from microsoft_teams.cards import core as declared
from pydantic import BaseModel, ValidationError

COMMON = {"type", "id", "spacing", "separator", "isVisible", "height", "requires", "fallback"}
ELEMENTS: dict[str, tuple[set[str], set[str]]] = {  # (allowed, required)
    "TextBlock": ({"text", "wrap", "weight", "size", "color", "isSubtle", "fontType",
                   "maxLines", "horizontalAlignment", "style"}, {"text"}),
    "FactSet": ({"facts"}, {"facts"}),
    "Container": ({"items", "style", "bleed"}, {"items"}),
    "ActionSet": ({"actions"}, {"actions"}),
    "Input.Text": ({"label", "isRequired", "errorMessage", "value", "placeholder", "maxLength",
                    "isMultiline", "style", "regex"}, {"id"}),
    "Input.Date": ({"label", "isRequired", "errorMessage", "value", "min", "max",
                    "placeholder"}, {"id"}),
    "Input.ChoiceSet": ({"label", "isRequired", "errorMessage", "value", "choices",
                         "isMultiSelect", "style", "placeholder", "wrap"}, {"id", "choices"}),
}
ACTIONS: dict[str, tuple[set[str], set[str]]] = {
    "Action.Execute": ({"verb", "data", "associatedInputs"}, {"verb"}),
    "Action.Submit": ({"data", "associatedInputs"}, set()),
    "Action.OpenUrl": ({"url"}, {"url"}),
}
ACTION_COMMON = {"type", "title", "style", "id", "iconUrl", "tooltip", "isEnabled", "mode"}
STYLES = {"default", "positive", "destructive"}
COLORS = {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"}


def problems(card: dict[str, Any], version: str = "1.5") -> list[str]:
    found: list[str] = []
    if card.get("type") != "AdaptiveCard":
        found.append("not an AdaptiveCard")
    if card.get("version") != version:
        found.append(f"version {card.get('version')!r}, not {version}")
    if not isinstance(card.get("body"), list):
        found.append("no body")
    allowed_top = {"type", "$schema", "version", "body", "actions", "refresh", "msteams",
                   "fallbackText", "speak", "lang", "minHeight", "rtl", "verticalContentAlignment"}
    found += [f"card property {k}" for k in card if k not in allowed_top]
    ids: list[str] = []

    def element(item: dict[str, Any], where: str) -> None:
        kind = item.get("type")
        if kind not in ELEMENTS:
            found.append(f"{where}: unknown element {kind!r}")
            return
        allowed, required = ELEMENTS[kind]
        found.extend(f"{where}: {kind} has no {r}" for r in required if r not in item)
        found.extend(f"{where}: {kind} may not have {k}" for k in item
                     if k not in allowed | COMMON)
        if kind.startswith("Input.") and "label" not in item:
            found.append(f"{where}: input {item.get('id')} has no label")
        if "id" in item:
            ids.append(str(item["id"]))
        if kind == "TextBlock" and not isinstance(item.get("text"), str):
            found.append(f"{where}: TextBlock text is not a string")
        if "color" in item and item["color"] not in COLORS:
            found.append(f"{where}: colour {item['color']!r}")
        if kind == "FactSet":
            for fact in item["facts"]:
                if set(fact) != {"title", "value"}:
                    found.append(f"{where}: fact {fact}")
        if kind == "Input.ChoiceSet":
            for choice in item["choices"]:
                if set(choice) != {"title", "value"}:
                    found.append(f"{where}: choice {choice}")
        for index, child in enumerate(item.get("items") or []):
            element(child, f"{where}.items[{index}]")
        for index, child in enumerate(item.get("actions") or []):
            action(child, f"{where}.actions[{index}]")

    def action(item: dict[str, Any], where: str) -> None:
        kind = item.get("type")
        if kind not in ACTIONS:
            found.append(f"{where}: unknown action {kind!r}")
            return
        allowed, required = ACTIONS[kind]
        found.extend(f"{where}: {kind} has no {r}" for r in required if r not in item)
        found.extend(f"{where}: {kind} may not have {k}" for k in item
                     if k not in allowed | ACTION_COMMON)
        if item.get("style", "default") not in STYLES:
            found.append(f"{where}: style {item['style']!r}")
        if not item.get("title"):
            found.append(f"{where}: action without a title")

    for index, item in enumerate(card.get("body") or []):
        element(item, f"body[{index}]")
    for index, item in enumerate(card.get("actions") or []):
        action(item, f"actions[{index}]")
    if len(ids) != len(set(ids)):
        found.append(f"duplicate ids {ids}")
    return found + declared_problems(card)


# Properties a card may carry that the declarations leave out: the JSON schema's own pointer.
UNDECLARED = {"AdaptiveCard": {"$schema"}}


@cache
def _declared_models() -> dict[str, type[BaseModel]]:
    """Each element, action and card type the SDK declares -> its model."""
    found: dict[str, type[BaseModel]] = {}
    for value in vars(declared).values():
        if isinstance(value, type) and issubclass(value, BaseModel):
            kind = value.model_fields.get("type")
            if kind is not None and isinstance(kind.default, str):
                found.setdefault(kind.default, value)
    return found


def declared_problems(card: dict[str, Any]) -> list[str]:
    """Every object with a `type` the SDK declares, checked against that type's model (its
    children are checked in turn, each against its own)."""
    found: list[str] = []
    models = _declared_models()

    def walk(value: object, where: str) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")
            return
        if not isinstance(value, dict):
            return
        model = models.get(str(value.get("type")))
        if model is not None:
            try:
                checked = model.model_validate(value)
            except ValidationError as error:
                found.extend(f"{where}: {value['type']} {'.'.join(map(str, e['loc']))}: "
                             f"{e['msg']}" for e in error.errors())
            else:
                allowed = UNDECLARED.get(str(value["type"]), set())
                found.extend(f"{where}: {value['type']} declares no {key}"
                             for key in checked.model_extra or {} if key not in allowed)
        for key, child in value.items():
            if key != "data":  # a button's own payload, not card content
                walk(child, f"{where}.{key}")

    walk(card, "card")
    return found
