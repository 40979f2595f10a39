"""Render the core's neutral messages and forms as Block Kit, and read modal input back.

Blocks are built with `slack_sdk.models`, whose `to_dict()` checks most of Block Kit's limits.
The limits the SDK does not check (50 blocks per message, 100 per modal, the top-level text,
option labels) are enforced here: long content is split or truncated with a note, never sent
to be rejected by Slack.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ContextBlock,
    DatePickerElement,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.messages import Action, ActionValue, FieldKind, Form, FormField, FormId, Message, Style

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
FIELDS_PER_SECTION = 10
HEADER_TEXT = 150
BUTTON_TEXT = 75
OPTION_TEXT = 75
ACTIONS_PER_BLOCK = 25
VIEW_TITLE = 24
FALLBACK_TEXT = 3000
TRUNCATED = "… (truncated: open the case for the full text)"
ACTION_PREFIX = "nb"


def clip(text: str, limit: int, marker: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(marker)] + marker


def _chunks(text: str, limit: int) -> list[str]:
    """Split on line breaks where possible so each piece fits one section."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            pieces.append(current)
            current = ""
        current += line
    if current:
        pieces.append(current)
    return pieces or [""]


def action_id(value: ActionValue, index: int) -> str:
    return f"{ACTION_PREFIX}:{value.action.value}:{index}"


def message_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[Block] = []
    if message.title:
        blocks.append(HeaderBlock(text=PlainTextObject(text=clip(message.title, HEADER_TEXT))))
    if message.text:
        blocks += [SectionBlock(text=MarkdownTextObject(text=chunk))
                   for chunk in _chunks(message.text, SECTION_TEXT)]
    if message.preformatted:
        blocks += [SectionBlock(text=MarkdownTextObject(text=f"```{chunk}```"))
                   for chunk in _chunks(message.preformatted, SECTION_TEXT - 6)]
    fields = [MarkdownTextObject(text=clip(f"*{k}*\n{v}", FIELD_TEXT)) for k, v in message.fields]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append(SectionBlock(fields=fields[start:start + FIELDS_PER_SECTION]))
    context = [part for part in (message.section and f"ICE Directive 15006.1 {message.section}",
                                 *message.notes) if part]
    for start in range(0, len(context), 10):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(c, SECTION_TEXT))
                                             for c in context[start:start + 10]]))
    buttons = [
        ButtonElement(
            text=PlainTextObject(text=clip(a.label, BUTTON_TEXT)),
            action_id=action_id(a.value, i),
            value=json.dumps(a.value.to_dict(), separators=(",", ":")),
            style=None if a.style is Style.default else a.style.value,
            confirm=_confirm(a),
        )
        for i, a in enumerate(message.actions)
    ]
    for start in range(0, len(buttons), ACTIONS_PER_BLOCK):
        blocks.append(ActionsBlock(elements=buttons[start:start + ACTIONS_PER_BLOCK]))
    rendered = [block.to_dict() for block in blocks]
    if len(rendered) > MAX_MESSAGE_BLOCKS:
        note = ContextBlock(elements=[MarkdownTextObject(text=TRUNCATED)]).to_dict()
        rendered = [*rendered[: MAX_MESSAGE_BLOCKS - 1], note]
    return rendered


def fallback_text(message: Message) -> str:
    """The top-level `text` (notifications, screen readers)."""
    text = f"{message.title}: {message.text}" if message.title else message.text
    return clip(text, FALLBACK_TEXT)


# --- forms as modals ------------------------------------------------------------------------


def _option(value: str, label: str) -> Option:
    if len(label) <= OPTION_TEXT:
        return Option(value=value, text=PlainTextObject(text=label))
    return Option(value=value, text=PlainTextObject(text=clip(label, OPTION_TEXT)),
                  description=PlainTextObject(text=clip(label[OPTION_TEXT - 1:], OPTION_TEXT)))


def _element(spec: FormField) -> Any:
    options = [_option(o.value, o.label) for o in spec.options]
    single = spec.initial if isinstance(spec.initial, str) and spec.initial else None
    several = spec.initial if isinstance(spec.initial, tuple) else ()
    initial = next((o for o in options if o.value == single), None)
    if spec.kind is FieldKind.date:
        return DatePickerElement(action_id="value", initial_date=single)
    if spec.kind is FieldKind.choice:
        return StaticSelectElement(action_id="value", options=options, initial_option=initial,
                                   placeholder=PlainTextObject(text="Choose"))
    if spec.kind is FieldKind.multi_choice:
        # The default the form's text announces (e.g. all documents) is ticked already.
        return CheckboxesElement(action_id="value", options=options,
                                 initial_options=[o for o in options if o.value in several]
                                 or None)
    if spec.kind is FieldKind.yes_no:
        return RadioButtonsElement(action_id="value", options=options, initial_option=initial)
    return PlainTextInputElement(action_id="value", multiline=spec.kind is FieldKind.long_text,
                                 max_length=spec.max_length, initial_value=single)


def _confirm(action: Action) -> ConfirmObject | None:
    if action.confirm is None:
        return None
    return ConfirmObject(title=PlainTextObject(text=clip(action.confirm.title, 100)),
                         text=PlainTextObject(text=clip(action.confirm.text, 300)),
                         confirm=PlainTextObject(text=clip(action.confirm.confirm, 30)),
                         deny=PlainTextObject(text=clip(action.confirm.deny, 30)),
                         style="danger" if action.style is Style.danger else "primary")


def form_view(form: Form, *, metadata: dict[str, Any]) -> dict[str, Any]:
    blocks: list[Block] = []
    intro = " ".join(p for p in (form.intro, form.section and f"_{form.section}_") if p)
    if intro:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(intro, SECTION_TEXT))))
    if form.preformatted:  # the request to copy, as a code block
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=clip(f"```{form.preformatted}```", SECTION_TEXT))))
    for spec in form.fields:
        # A modal cannot hide a dependent question, so it is optional here and the core
        # answers at the field if its condition holds and it was left empty.
        # A date picker is not typed into: the typed-date hint is for text surfaces.
        hint = "" if spec.kind is FieldKind.date else spec.hint
        if spec.when is not None and spec.required:
            hint = " ".join(p for p in (hint, "Required when it applies.") if p)
        blocks.append(InputBlock(
            block_id=spec.name,
            label=PlainTextObject(text=clip(spec.label, 2000)),
            element=_element(spec),
            optional=not spec.required or spec.when is not None,
            hint=PlainTextObject(text=clip(hint, 2000)) if hint else None,
        ))
    private = json.dumps({"form": form.form_id.value, "case_id": form.case_id, "ref": form.ref,
                          **metadata}, separators=(",", ":"))
    view = View(
        type="modal",
        callback_id=f"{ACTION_PREFIX}:form",
        title=PlainTextObject(text=clip(form.title, VIEW_TITLE)),
        submit=PlainTextObject(text=clip(form.submit_label, VIEW_TITLE)),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private,
        blocks=blocks[:MAX_VIEW_BLOCKS],
    )
    return view.to_dict()


def notice_view(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (a refusal after submit, a confirmation)."""
    return View(type="modal", title=PlainTextObject(text=clip(title, VIEW_TITLE)),
                close=PlainTextObject(text="Close"),
                blocks=[SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT)))],
                ).to_dict()


def read_view_state(view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, object]]:
    """(private metadata, submitted values by field name) from a view_submission payload.
    Anything not shaped as Slack sends it (and as the bot wrote it) is a ValueError."""
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
        FormId(metadata["form"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ValueError("the form's metadata is missing or damaged") from None
    for key, wanted in (("ref", int), ("case_id", str), ("channel", str)):
        if metadata.get(key) is not None and type(metadata[key]) is not wanted:
            raise ValueError("the form's metadata is missing or damaged")
    values: dict[str, object] = {}
    try:
        for block_id, actions in (view.get("state", {}).get("values", {}) or {}).items():
            element = actions.get("value") or {}
            kind = element.get("type")
            if kind == "datepicker":
                value: object = element.get("selected_date")
            elif kind in ("static_select", "radio_buttons"):
                selected = element.get("selected_option")
                value = selected.get("value") if selected else None
            elif kind == "checkboxes":
                value = [o.get("value") for o in element.get("selected_options") or []]
            else:
                value = element.get("value")
            if not (value is None or isinstance(value, str) or (
                    isinstance(value, list) and all(isinstance(v, str) for v in value))):
                raise ValueError(f"the field {block_id} has a value of the wrong type")
            values[block_id] = value
    except (AttributeError, TypeError):
        raise ValueError("the form's state is damaged") from None
    return metadata, values
