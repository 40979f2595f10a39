"""A structural check of Adaptive Cards against the 1.5 schema's element and action types, the
properties each allows (as noticebot uses them) and their required properties. The schema file
itself is not available offline; this is the part of it the cards can break."""

from __future__ import annotations

from typing import Any

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
COLORS = {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention",
          "default", "dark", "light", "accent", "good", "warning", "attention"}


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
    return found
