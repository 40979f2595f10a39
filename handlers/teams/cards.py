"""Adaptive Cards 1.5 from the core's neutral `Message` and `Form`.

Cards carry no images (GCC High does not render image URLs) and target 1.5: Universal Actions
need 1.4, and Teams' support for 1.6 is unverified. A button is an `Action.Execute` (verb
"nb") unless pressing it can lead to a form or needs a confirmation: then it opens a dialog
(`task/fetch`), because an Action.Execute response cannot open one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.delivery.port import Recipient
from bot.messages import (
    MARK_SYMBOLS,
    Action,
    ActionId,
    FieldKind,
    Form,
    FormField,
    FormId,
    Mark,
    Message,
    Style,
    render_mentions,
)

VERSION = "1.5"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
VERB = "nb"  # every Action.Execute noticebot sends
DIALOG = "nb"  # every dialog noticebot opens (task/fetch data.dialog_id)
SUBMIT = "nb_submit"  # a form dialog's submit (task/submit data.action)
CONFIRM = "nb_confirm"  # a confirmation dialog's submit
PRESS = "nb_press"  # a button in a dialog (task/submit: a dialog has no Action.Execute)
MAX_TEXT = 20_000  # far below Teams' ~28 KB message limit once wrapped

Card = dict[str, Any]
Namer = Callable[[str], str]

_STYLES = {Style.primary: "positive", Style.danger: "destructive"}
_COLORS = {Mark.good: "Good", Mark.adverse: "Attention", Mark.refused: "Attention",
           Mark.waiting: "Warning", Mark.current: "Accent"}
# Clicks answered by something only the clicker may see in full (a case's details): a dialog.
_SHOWN_IN_DIALOG = {ActionId.show_case}


def opens_dialog(action: Action) -> bool:
    """Whether the button must be a task/fetch (a form may follow, or a confirmation first)."""
    return (action.value.action.value in FormId.__members__ or action.confirm is not None
            or action.value.action in _SHOWN_IN_DIALOG)


def card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> Card:
    out: Card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if actions:
        out["actions"] = actions
    return out


def attachment(content: Card) -> dict[str, Any]:
    return {"contentType": CONTENT_TYPE, "content": content}


def text_block(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text[:MAX_TEXT], "wrap": True, **extra}


def _looks(action: Action) -> dict[str, Any]:
    style = _STYLES.get(action.style)
    return {"title": action.label, **({"style": style} if style else {})}


def _pressed(action: Action) -> dict[str, Any]:
    """What a button that opens a dialog sends back: the click, and its confirmation if any."""
    return {"value": action.value.to_dict(),
            "confirm": action.confirm.to_dict() if action.confirm else None}


def button(action: Action) -> dict[str, Any]:
    if opens_dialog(action):
        return {"type": "Action.Submit", **_looks(action),
                "data": {"msteams": {"type": "task/fetch"}, "dialog_id": DIALOG,
                         **_pressed(action)}}
    return {"type": "Action.Execute", **_looks(action), "verb": VERB,
            "data": action.value.to_dict()}


def dialog_button(action: Action, nonce: str) -> dict[str, Any]:
    """A button inside a dialog. A dialog's card can only submit (task/submit), so it is an
    `Action.Submit` carrying what the card's button would; `nonce` keys this press."""
    return {"type": "Action.Submit", **_looks(action),
            "data": {"action": PRESS, "nb": {"nonce": nonce, **_pressed(action)}}}


def message_body(message: Message, name: Namer) -> list[dict[str, Any]]:
    def said(text: str) -> str:
        return render_mentions(text, name)

    body: list[dict[str, Any]] = []
    if message.title:
        # The core's titles lead with their mark's symbol; one without it gets it here.
        symbol = MARK_SYMBOLS[message.mark] if message.mark else ""
        title = said(message.title)
        if symbol and not title.startswith(symbol):
            title = f"{symbol} {title}"
        color = _COLORS.get(message.mark) if message.mark else None
        body.append(text_block(title, weight="Bolder", size="Medium",
                               **({"color": color} if color else {})))
    if message.text:
        body.append(text_block(said(message.text)))
    if message.fields:
        body.append({"type": "FactSet", "facts": [
            {"title": said(k), "value": said(v)} for k, v in message.fields]})
    if message.preformatted:
        body.append(text_block(message.preformatted, fontType="Monospace"))
    notes = [said(n) for n in message.notes]
    if message.section:
        notes.append(f"Directive {message.section}")
    if notes:
        body.append(text_block("\n\n".join(notes), isSubtle=True, size="Small"))
    return body or [text_block(" ")]


class Mentions:
    """How one card names people: as Teams mentions, which notify them in their activity
    feed, where their Entra object id is known (`people`); anyone else as `plain` names them.
    Teams pairs each mention in the text with its entity by the text alone, so of two people
    with the same name only the first is a mention; the other is named plainly."""

    def __init__(self, people: Mapping[str, Recipient], plain: Namer) -> None:
        self.people = people
        self.plain = plain
        self._entities: dict[str, dict[str, Any]] = {}  # by the mention's text

    def __call__(self, person_id: str) -> str:
        found = self.people.get(person_id)
        if found is None:
            return self.plain(person_id)
        text = f"<at>{found.name}</at>"
        entity = self._entities.setdefault(text, {
            "type": "mention", "text": text,
            "mentioned": {"id": found.identity, "name": found.name}})
        return text if entity["mentioned"]["id"] == found.identity else found.name

    def entities(self) -> list[dict[str, Any]]:
        """The mentions used so far, each once."""
        return list(self._entities.values())


def message_card(message: Message, name: Namer, *, mentions: Mentions | None = None) -> Card:
    """The message as a card; with `mentions`, the people it names are mentioned (a mention
    goes only where everyone named may be told: a channel)."""
    built = card(message_body(message, mentions or name), [button(a) for a in message.actions])
    if mentions is not None and mentions.entities():
        built["msteams"] = {"entities": mentions.entities()}
    return built


def summary(message: Message, name: Namer) -> str:
    """The activity's plain text (notifications, screen readers): the title, never details."""
    return render_mentions(message.title or message.text, name)[:200]


# --- forms (dialogs) ------------------------------------------------------------------------

def _initial(field: FormField, values: Mapping[str, object] | None) -> str | None:
    given: object = values.get(field.name) if values is not None else field.initial
    if given is None or given == "" or given == ():
        return None
    if isinstance(given, list | tuple | set | frozenset):
        return ",".join(str(v) for v in given)
    if isinstance(given, bool):
        return "yes" if given else "no"
    return str(given)


def _input(field: FormField, value: str | None) -> dict[str, Any]:
    # Client-side `isRequired` only where the question is always asked; the core decides.
    required = field.required and field.when is None
    out: dict[str, Any] = {"id": field.name, "label": field.label, "isRequired": required}
    if required:
        out["errorMessage"] = field.required_message or f"{field.label} is required"
    if field.kind in (FieldKind.text, FieldKind.long_text):
        out |= {"type": "Input.Text", "maxLength": field.max_length,
                "isMultiline": field.kind is FieldKind.long_text}
    elif field.kind is FieldKind.date:
        out["type"] = "Input.Date"
    else:
        options = ([("yes", "Yes"), ("no", "No")] if field.kind is FieldKind.yes_no
                   else [(o.value, o.label) for o in field.options])
        out |= {"type": "Input.ChoiceSet",
                "choices": [{"title": label, "value": v} for v, label in options],
                "isMultiSelect": field.kind is FieldKind.multi_choice,
                "style": "compact" if field.kind is FieldKind.choice and len(options) > 5
                else "expanded"}
    if value is not None:
        out["value"] = value
    return out


def form_card(form: Form, *, submit_data: Mapping[str, Any], name: Namer,
              values: Mapping[str, object] | None = None,
              errors: Mapping[str, str] | None = None) -> Card:
    """A form as a dialog's card. After inline errors, `values` are what was entered (kept)
    and each error shows in red under its field; errors for no field show on top."""
    errors = dict(errors or {})
    body: list[dict[str, Any]] = []
    names = {f.name for f in form.fields}
    stray = [f"{k}: {v}" for k, v in errors.items() if k not in names]
    if stray:
        body.append(text_block("\n\n".join(stray), color="Attention", weight="Bolder"))
    if form.intro:
        body.append(text_block(render_mentions(form.intro, name)))
    if form.preformatted:
        body.append(text_block(form.preformatted, fontType="Monospace"))
    for field in form.fields:
        if field.when is not None:
            wanted = ", ".join(field.when.values)
            body.append(text_block(f"Only if {form.field(field.when.field).label}: {wanted}",
                                   isSubtle=True, size="Small", spacing="Medium"))
        body.append(_input(field, _initial(field, values)))
        if field.hint:
            body.append(text_block(field.hint, isSubtle=True, size="Small", spacing="None"))
        if field.name in errors:
            body.append(text_block(errors[field.name], color="Attention", spacing="None"))
    if form.section:
        body.append(text_block(f"Directive {form.section}", isSubtle=True, size="Small"))
    return card(body, [{"type": "Action.Submit", "title": form.submit_label,
                        "style": "positive", "data": dict(submit_data)}])


def read_values(form: Form, data: Mapping[str, object]) -> dict[str, object]:
    """The submitted answers by field name, typed as the core reads them: text as given
    (empty: None), several choices as a list. Keys that are no field of the form are dropped,
    so the dialog's own data (nonce, form id) never reaches the core as an answer."""
    values: dict[str, object] = {}
    for field in form.fields:
        raw = data.get(field.name)
        if raw is not None and not isinstance(raw, str):
            raise ValueError(f"the field {field.name} has a value of the wrong type")
        if field.kind is FieldKind.multi_choice:
            values[field.name] = [v for v in (raw or "").split(",") if v]
        else:
            values[field.name] = raw or None
    return values
