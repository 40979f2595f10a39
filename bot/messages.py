"""Platform-neutral messages, actions and forms. Adapters (console, Slack, Teams) render these;
the core never knows how."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from storage.enums import DestinationKind as DestinationKind


class ActionId(StrEnum):
    """Every button the core can offer. Values are stable: they travel in button payloads."""

    validity_sent = "validity_sent"
    validity_answer = "validity_answer"
    review = "review"
    doubt_step = "doubt_step"
    doubt_resolve = "doubt_resolve"
    request_approval = "request_approval"
    approve = "approve"
    deny = "deny"
    documents_sent = "documents_sent"
    documents_answer = "documents_answer"
    documents_no_response = "documents_no_response"
    documents_review = "documents_review"
    use_auth_sent = "use_auth_sent"
    use_auth_answer = "use_auth_answer"
    use_auth_no_response = "use_auth_no_response"
    disclosure = "disclosure"
    disclosure_exception = "disclosure_exception"
    sign_off_exception = "sign_off_exception"
    refuse_exception = "refuse_exception"
    representations = "representations"
    report_inactive = "report_inactive"
    withdraw = "withdraw"
    show_case = "show_case"
    retry_delivery = "retry_delivery"
    switch_manual = "switch_manual"
    reminder_followed_up = "reminder_followed_up"
    reminder_snooze = "reminder_snooze"
    return_for_changes = "return_for_changes"
    change_use = "change_use"
    approve_use_change = "approve_use_change"
    refuse_use_change = "refuse_use_change"
    person_response = "person_response"
    record_outcome = "record_outcome"
    close_case = "close_case"


class FormId(StrEnum):
    open_case = "open_case"
    validity_sent = "validity_sent"
    validity_answer = "validity_answer"
    review = "review"
    doubt_step = "doubt_step"
    doubt_resolve = "doubt_resolve"
    deny = "deny"
    documents_sent = "documents_sent"
    documents_answer = "documents_answer"
    documents_review = "documents_review"
    use_auth_sent = "use_auth_sent"
    use_auth_answer = "use_auth_answer"
    disclosure = "disclosure"
    disclosure_exception = "disclosure_exception"
    refuse_exception = "refuse_exception"
    representations = "representations"
    report_inactive = "report_inactive"
    withdraw = "withdraw"
    switch_manual = "switch_manual"
    return_for_changes = "return_for_changes"
    change_use = "change_use"
    refuse_use_change = "refuse_use_change"
    person_response = "person_response"
    record_outcome = "record_outcome"
    close_case = "close_case"


class Style(StrEnum):
    default = "default"
    primary = "primary"
    danger = "danger"


def mention(user_id: str) -> str:
    """How core text names a person. Every mention goes through here, so the form it takes is
    decided in one place and each surface can render it its own way."""
    return f"<@{user_id}>"


@dataclass(frozen=True)
class ActionValue:
    """What a button carries back: small, typed, no subject detail."""

    action: ActionId
    case_id: str | None = None
    ref: int | None = None  # approval or request id where the action targets one

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action.value, "case_id": self.case_id, "ref": self.ref}

    @classmethod
    def from_dict(cls, data: object) -> ActionValue:
        if not isinstance(data, dict):
            raise ValueError("a button value is a JSON object")
        ref, case_id = data.get("ref"), data.get("case_id")
        # Typed as the core wrote it: anything else was not made by the core (ValueError).
        if ref is not None and (type(ref) is not int or not 0 <= ref < 2**31):
            raise ValueError("ref must be a small non-negative integer")
        if case_id is not None and not isinstance(case_id, str):
            raise ValueError("case_id must be a string")
        return cls(action=ActionId(str(data["action"])), case_id=case_id, ref=ref)


@dataclass(frozen=True)
class Confirm:
    """A 'are you sure?' dialog a surface shows before a destructive button acts."""

    title: str
    text: str
    confirm: str
    deny: str = "Cancel"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Action:
    label: str
    value: ActionValue
    style: Style = Style.default
    confirm: Confirm | None = None


class Mark(StrEnum):
    """How a message's state reads at a glance; each surface gives it its own symbol and colour."""

    good = "good"  # done, and the outcome lets the case go on
    adverse = "adverse"  # done, and the outcome stops or sets back the case
    waiting = "waiting"  # waiting for someone else (an approver, the USNCB)
    refused = "refused"  # an attempt that was not done
    current = "current"  # the step to act on now
    skipped = "skipped"  # not reached: the case closed before it
    reopened = "reopened"  # done before, then sent back: to be done again


# The symbol each mark carries in text surfaces (console, notifications) and titles.
MARK_SYMBOLS: dict[Mark, str] = {
    Mark.good: "✅",
    Mark.adverse: "⛔",
    Mark.waiting: "⏳",
    Mark.refused: "🚫",
    Mark.current: "▶",
    Mark.skipped: "▫️",
    Mark.reopened: "↩",
}


@dataclass(frozen=True)
class Message:
    text: str
    section: str = ""  # the directive section the message implements, e.g. "§5.1(1)"
    title: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    actions: tuple[Action, ...] = ()
    key: str | None = None  # a later message with the same key replaces this one in place
    notes: tuple[str, ...] = ()  # smaller context lines
    mark: Mark | None = None
    preformatted: str = ""  # text to be copied verbatim (e.g. a request to paste elsewhere)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["actions"] = [
            {"label": a.label, "style": a.style.value, "value": a.value.to_dict(),
             **({"confirm": a.confirm.to_dict()} if a.confirm else {})}
            for a in self.actions
        ]
        data["mark"] = self.mark.value if self.mark else None
        data["fields"] = [list(pair) for pair in self.fields]
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(
            text=str(data["text"]),
            section=str(data.get("section", "")),
            title=str(data.get("title", "")),
            fields=tuple((str(k), str(v)) for k, v in data.get("fields", [])),
            actions=tuple(
                Action(
                    label=str(a["label"]),
                    value=ActionValue.from_dict(a["value"]),
                    style=Style(a.get("style", "default")),
                    confirm=Confirm(**a["confirm"]) if a.get("confirm") else None,
                )
                for a in data.get("actions", [])
            ),
            key=data.get("key"),
            notes=tuple(str(n) for n in data.get("notes", [])),
            mark=Mark(data["mark"]) if data.get("mark") else None,
            preformatted=str(data.get("preformatted", "")),
        )

    def all_text(self) -> str:
        """Everything a reader would see, for checks that no subject detail leaks."""
        parts = [self.title, self.text, self.preformatted, self.section, *self.notes]
        parts += [f"{k} {v}" for k, v in self.fields]
        parts += [a.label for a in self.actions]
        return "\n".join(parts)


@dataclass(frozen=True)
class Delivery:
    """A message bound for somewhere."""

    kind: DestinationKind
    destination: str
    message: Message


class FieldKind(StrEnum):
    text = "text"
    long_text = "long_text"
    date = "date"
    choice = "choice"
    multi_choice = "multi_choice"
    yes_no = "yes_no"


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    code: str = ""  # what a text surface prints and accepts; stable within a form


@dataclass(frozen=True)
class ShownWhen:
    """A dependent question: asked only when `field`'s answer is (or, for several choices,
    includes) one of `values`. Yes/no answers compare as "yes" / "no"."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class ChosenIn:
    """A question about the items chosen in another question (plus `also`, set by the case):
    a surface that can offers only those, keeping their codes."""

    field: str
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: FieldKind = FieldKind.text
    required: bool = True  # when `when` is set: required whenever the question is asked
    options: tuple[Option, ...] = ()
    hint: str = ""
    max_length: int = 500
    initial: str | tuple[str, ...] | None = None  # a tuple for several choices
    when: ShownWhen | None = None
    chosen_in: ChosenIn | None = None
    required_message: str = ""  # why it is required, said instead of "is required"
    # A justification the directive asks for: what it must explain. When set, the core refuses
    # placeholders and text below the configured minimums (bot.core.forms).
    expects: str = ""

    def codes(self) -> list[tuple[str, Option]]:
        """(code, option) pairs: the option's own code, else its position (1, 2, ...)."""
        return [(o.code or str(i), o) for i, o in enumerate(self.options, 1)]

    def initial_label(self) -> str:
        """The default as the person reads it: option labels, not stored values."""
        if self.initial is None or self.initial == () or self.initial == "":
            return ""
        values = (self.initial,) if isinstance(self.initial, str) else self.initial
        labels = {o.value: o.label for o in self.options}
        return ", ".join(labels.get(v, v) for v in values)


@dataclass(frozen=True)
class Form:
    form_id: FormId
    title: str
    fields: tuple[FormField, ...]
    section: str = ""
    submit_label: str = "Submit"
    case_id: str | None = None
    ref: int | None = None
    intro: str = ""
    preformatted: str = ""  # text to be copied verbatim, e.g. a request to send elsewhere

    def field(self, name: str) -> FormField:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)


class RefusalCode(StrEnum):
    """Why the core refused, machine-readable: recorded with the refusal, counted in metrics
    and mapped to HTTP statuses by the USNCB callback. Values are stored; never rename one."""

    already_done = "already_done"
    answered = "answered"
    aor = "aor"
    approval_first = "approval_first"
    bad_input = "bad_input"
    closed = "closed"
    decided = "decided"
    duplicate = "duplicate"
    indications = "indications"
    no_answer = "no_answer"
    no_aor = "no_aor"
    no_approval = "no_approval"
    no_approver = "no_approver"
    no_case = "no_case"
    no_channel = "no_channel"
    no_request = "no_request"
    not_approver = "not_approver"
    not_authorized = "not_authorized"
    not_eligible = "not_eligible"
    not_on_roster = "not_on_roster"
    not_owner = "not_owner"
    officer_active = "officer_active"
    operator_not_bound = "operator_not_bound"
    pending = "pending"
    refused = "refused"
    review_first = "review_first"
    role = "role"
    self_approval = "self_approval"
    stage = "stage"
    stale = "stale"
    tip_off = "tip_off"
    training = "training"
    unknown_request = "unknown_request"
    usage = "usage"


@dataclass
class Outcome:
    """What the core answers to one interaction."""

    ok: bool = True
    private: list[Message] = field(default_factory=list)  # only the actor sees these
    form: Form | None = None  # a form to open for the actor
    errors: dict[str, str] = field(default_factory=dict)  # inline form errors by field name
    refusal: str | None = None
    refusal_code: RefusalCode | None = None  # machine-readable reason

    case_id: str | None = None
    duplicate: bool = False  # a re-delivery of an interaction already acted on: nothing done
    # An answer (USNCB callback) that was already on record: acknowledged, nothing changed.
    already_recorded: bool = False
    # Person id -> the acting platform's id of each person `private` mentions (when the actor
    # came as a PlatformUser from a platform that renders mentions itself, not NAMES_PEOPLE).
    mention_ids: dict[str, str] = field(default_factory=dict)
    # Person id -> name of each person on the roster that the refusal, `private` or `form`
    # mentions (when the actor came from a platform that names people: NAMES_PEOPLE), read
    # with the answer, so that surface needs no database. A mention not here is of no person.
    mention_names: dict[str, str] = field(default_factory=dict)
    # `private` went to the actor's direct messages instead of only to the record
    # (`Core.command` answer_by_dm; False when no person on the roster is reachable there).
    sent_by_dm: bool = False


MENTION = re.compile(r"<@([A-Za-z0-9._:@-]+)>")


def mentioned(text: str) -> list[str]:
    """The person ids mentioned in core text, in order, each once."""
    return list(dict.fromkeys(MENTION.findall(text)))


def mentioned_in(message: Message) -> list[str]:
    """The person ids mentioned anywhere in a message's texts, in order, each once."""
    parts = [message.title, message.text, message.preformatted, *message.notes]
    parts += [value for _, value in message.fields]
    return mentioned("\n".join(parts))


def mentioned_by(outcome: Outcome) -> list[str]:
    """The person ids mentioned anywhere in what an outcome shows: its refusal, its private
    messages and its form's texts; in order, each once."""
    found = mentioned(outcome.refusal or "")
    found += [user_id for message in outcome.private for user_id in mentioned_in(message)]
    if outcome.form is not None:
        form = outcome.form
        found += mentioned("\n".join((form.title, form.intro, form.preformatted)))
    return list(dict.fromkeys(found))


def render_mentions(text: str, render: Callable[[str], str]) -> str:
    """`text` with every mention replaced by what `render(person id)` gives (a surface's own
    mention syntax, or a plain name)."""
    return MENTION.sub(lambda match: render(match.group(1)), text)
