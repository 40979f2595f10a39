"""The forms the core asks for, and the generic checks every field gets.

Each step's form is built in its module under `bot.core.steps` (with its step-specific rules,
for example "an unexplained risk indicator rules out *no indications*"); here are the option
tables those forms share and what a field's own definition says.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from bot.core.errors import FormErrors
from bot.messages import FieldKind, Form, FormField, FormId, Option, ShownWhen
from storage.models import IntendedUse, NoticeType, PersonResponse, UseOutcome

YES_NO = (Option("yes", "Yes"), Option("no", "No"))
YES_WORDS = ("yes", "y", "true")
NO_WORDS = ("no", "n", "false")

NOTICE_TYPES = (
    Option(NoticeType.red_notice, "Red Notice"),
    Option(NoticeType.diffusion, "Wanted Person Diffusion"),
)
INTENDED_USES = (
    Option(IntendedUse.enforcement, "To inform an enforcement action"),
    Option(IntendedUse.immigration, "In immigration proceedings (EOIR)"),
    Option(IntendedUse.both, "Both"),
)

USE_OUTCOMES: dict[str, str] = {
    UseOutcome.enforcement_action: "It informed an enforcement action",
    UseOutcome.immigration_proceedings: "It was introduced in immigration proceedings",
    UseOutcome.not_used: "It was not used",
}
PERSON_RESPONSES: dict[str, str] = {
    PersonResponse.none: "No response by the respond-by date",
    PersonResponse.not_contested: "Responded without contesting",
    PersonResponse.contested: "Contested",
}

# Risk indicators of misuse (§2.3, §5.2; O5 in docs/obligations.md). Keys are stable identifiers
# stored with each answer.
RISK_INDICATORS: dict[str, str] = {
    "diffusion": "The communication is a Wanted Person Diffusion (reviewed by INTERPOL only "
    "after it was sent)",
    "pre_reform": "The notice was published before INTERPOL's 2016-2017 reforms",
    "watchlist": "The issuing country is on the agency's confidential watch list",
    "misuser_charges": "Charges of the kinds misusers cite (fraud, financial crimes, terrorism)",
    "targeted_person": "The person is a human-rights defender, journalist, dissident, critic, "
    "civil-society activist or political opponent",
    "protected_status": "The person has or claims refugee, asylum or other protected status",
    "usg_employee": "The person is a current or former U.S. Government employee or official",
    "fabricated_evidence": "Indications that the charges rest on fabricated evidence, "
    "corruption or torture",
}
AUTOMATIC_INDICATORS = ("diffusion", "pre_reform", "watchlist")
REVIEW_OUTCOMES = (
    Option("no_indications", "No indications of misuse"),
    Option("doubt", "Doubt: indications to look into"),
    Option("misuse", "Material evidence of misuse or a prohibited notice"),
)

# §5.2: offense categories for which INTERPOL prohibits notices.
PROHIBITED_CATEGORIES: dict[str, str] = {
    "behavioral_norms": "Behavioral or cultural norms",
    "family_private": "Family or private matters",
    "administrative_private": "Administrative violation or private dispute",
}

# §2.3, §4.3(7): what the preliminary review must cover.
REVIEW_SOURCES: dict[str, str] = {
    "interpol_guidance": "INTERPOL guidance and rules (RPD)",
    "law_enforcement_systems": "Law-enforcement systems normally used by ICE",
    "usg_reports": "U.S. Government reports",
    "public_information": "Publicly available information",
    "underlying_documents": "Underlying documentation (if already received)",
}
REQUIRED_SOURCES = ("interpol_guidance", "law_enforcement_systems", "usg_reports",
                    "public_information")

DOCUMENT_KINDS: dict[str, str] = {
    "warrant": "Foreign arrest warrant",
    "indictment": "Indictment",
    "charging": "Charging documents",
    "conviction": "Conviction documentation",
    "police_reports": "Police reports",
}

# §5.2 doubt minimum. The requesting country's NCB is deliberately absent (tip-off guard).
DOUBT_KINDS: dict[str, str] = {
    "confer": "Conferred with partner agencies",
    "research": "Researched the person and the offense",
    "context": "Sought additional context and information",
}
DOUBT_PARTNERS: dict[str, str] = {
    "usncb": "USNCB",
    "state": "U.S. Department of State",
    "doj": "U.S. Department of Justice",
    "protected_country": "A country that may have granted the person protected status",
}
REQUESTING_NCB = "requesting_ncb"

NOTICE_STATUSES: dict[str, str] = {
    "active": "Active",
    "suspended": "Suspended",
    "withdrawn": "Withdrawn",
    "expired": "Expired",
}

COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")

# Justifications (docs/obligations.md: O7, O12, O17, O20, O29): the minimums are settings; these
# are what the core falls back on when a caller passes none.
DEFAULT_MIN_CHARS, DEFAULT_MIN_WORDS = 20, 4
# Text that stands for an answer without being one (compared lower-cased, without punctuation).
PLACEHOLDERS = frozenset({
    "x", "xx", "na", "n a", "none", "nil", "null", "tbd", "tba", "todo", "to do", "later",
    "see above", "see notes", "same", "same as above", "as above", "ok", "okay", "yes", "no",
    "test", "asdf", "qwerty", "lorem ipsum", "nothing", "unknown", "other", "misc", "etc",
})
WORD = re.compile(r"[^\W_]{2,}")  # two or more letters or digits


def justification_problem(text: str, *, expects: str, min_chars: int = DEFAULT_MIN_CHARS,
                          min_words: int = DEFAULT_MIN_WORDS) -> str | None:
    """Why `text` is not a justification (None if it is one). The one check every field that
    carries a justification the directive asks for goes through."""
    stripped = text.strip()
    bare = " ".join(re.sub(r"[^\w]+", " ", stripped.lower()).split())
    words = [w.lower() for w in WORD.findall(stripped)]
    wanted = (f"explain {expects} in at least {min_words} words and {min_chars} characters; "
              "placeholders such as 'x', 'n/a' or 'tbd' are not accepted")
    if not bare or bare in PLACEHOLDERS or len(set(bare.replace(" ", ""))) <= 2:
        return f"is a placeholder: {wanted}"
    if len(words) >= min(2, min_words) and len(set(words)) < min(min_words, len(words), 3):
        return f"repeats itself: {wanted}"  # "test test test", "bla bla bla bla"
    if len(words) < min_words or len(stripped) < min_chars:
        return f"is too short: {wanted}"
    return None


def justification(name: str, label: str, expects: str, *, required: bool = True,
                  when: ShownWhen | None = None, required_message: str = "") -> FormField:
    """A long-text field that carries a justification: `expects` says what it must explain."""
    return FormField(name, label, FieldKind.long_text, required=required, max_length=2000,
                     hint=f"In your own words, {expects} (a few words at least; placeholders "
                     "such as 'n/a' are refused)", expects=expects, when=when,
                     required_message=required_message)


def options(mapping: Mapping[str, str], only: Collection[str] | None = None
            ) -> tuple[Option, ...]:
    """Options numbered by their place in `mapping`, so a subset keeps each item's number and
    the same item reads the same in every question of a form."""
    return tuple(Option(k, v, str(i)) for i, (k, v) in enumerate(mapping.items(), 1)
                 if only is None or k in only)


DATE_HINT = "YYYY-MM-DD, MM/DD/YYYY, today, +14d"
RELATIVE_DATE = re.compile(r"^([+-])\s*(\d{1,4})\s*d(?:ays?)?$")
US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_date(text: str, *, today: date | None) -> date:
    """A date as officers type it: ISO, U.S. style, 'today', or days from today (+14d)."""
    lowered = text.strip().lower()
    if today is not None:
        if lowered == "today":
            return today
        if lowered == "yesterday":
            return today - timedelta(days=1)
        relative = RELATIVE_DATE.match(lowered)
        if relative:
            days = int(relative.group(2))
            return today + timedelta(days=days if relative.group(1) == "+" else -days)
    us = US_DATE.match(lowered)
    if us:
        return date(int(us.group(3)), int(us.group(1)), int(us.group(2)))
    return date.fromisoformat(lowered)


def date_field(name: str, label: str, *, today: date, required: bool = True) -> FormField:
    return FormField(
        name, label, FieldKind.date, required=required, initial=today.isoformat(),
        hint=DATE_HINT,
    )


def usncb_sent_fields(today: date, method: str | None = None) -> tuple[FormField, ...]:
    """`method`: how this officer sent requests before; the local procedure does not change
    from one request to the next, so it is offered as the answer."""
    return (
        date_field("sent_on", "Date the request was sent to the USNCB", today=today),
        FormField("method", "How it was sent (local procedure)", hint="e.g. USNCB e-mail, "
                  "I-LINK, phone", initial=method or None),
        FormField("reference", "USNCB reference, if any", required=False),
    )


def open_case_form() -> Form:
    return Form(
        FormId.open_case,
        "Open a notice case",
        (
            FormField("notice_type", "Notice type", FieldKind.choice, options=NOTICE_TYPES),
            FormField("notice_reference", "INTERPOL notice or diffusion reference",
                      max_length=80),
            FormField("subject_name", "Subject's name", max_length=200),
            FormField("subject_identifiers", "Subject identifiers (DOB, A-number, ...)",
                      required=False, max_length=500),
            FormField("issuing_country", "Issuing country (ISO code, e.g. MX)", max_length=8),
            FormField("offense_summary", "Offense(s) charged", FieldKind.long_text,
                      max_length=2000),
            FormField("published_on", "Date the notice was published, if known",
                      FieldKind.date, required=False, hint=DATE_HINT),
            FormField("intended_use", "Intended use", FieldKind.choice, options=INTENDED_USES),
            FormField("extradition_pending", "Is an extradition request pending, or does DOJ "
                      "have an interest?", FieldKind.yes_no, options=YES_NO),
            FormField("notes", "Notes", FieldKind.long_text, required=False, max_length=2000),
        ),
        section="§5.1",
        submit_label="Open case",
        intro="Subject details stay private: the case thread shows only the case id, type, "
        "AOR and stage.",
    )


def as_list(raw: object) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list | tuple | set | frozenset):
        return [str(part).strip() for part in raw if str(part).strip()]
    return [str(raw)]


class FieldError(ValueError):
    """One field's answer cannot be used; the message is said next to the field."""


def shown(spec: FormField, clean: Mapping[str, Any]) -> bool:
    """Whether a dependent question is asked, given the cleaned answers before it."""
    if spec.when is None:
        return True
    answer = clean.get(spec.when.field)
    if isinstance(answer, bool):
        given = {"yes" if answer else "no"}
    elif isinstance(answer, list | tuple):
        given = {str(a) for a in answer}
    else:
        given = set() if answer is None else {str(answer)}
    return bool(given & set(spec.when.values))


def _option(spec: FormField, token: str) -> str:
    """The stored value for what was typed or sent: a value, its code, or its label."""
    token = token.strip()
    for code, option in spec.codes():
        if token in (option.value, code) or token.lower() == option.label.lower():
            return option.value
    raise FieldError(f"'{token}' is not one of "
                     + ", ".join(f"{code} ({o.label})" for code, o in spec.codes()))


def narrowed(spec: FormField, clean: Mapping[str, Any]) -> FormField:
    """`spec` offering only the items chosen where its `chosen_in` points (codes unchanged)."""
    if spec.chosen_in is None:
        return spec
    chosen = set(clean.get(spec.chosen_in.field) or ()) | set(spec.chosen_in.also)
    kept = tuple(Option(o.value, o.label, code) for code, o in spec.codes() if o.value in chosen)
    return replace(spec, options=kept)


def check_field(spec: FormField, raw: object, *, today: date | None = None,
                min_chars: int = DEFAULT_MIN_CHARS, min_words: int = DEFAULT_MIN_WORDS) -> Any:
    """One field's answer, cleaned; FieldError says what is wrong. Every surface uses it, so a
    choice printed with a number takes that number everywhere, yes/no included."""
    if spec.kind is FieldKind.multi_choice:
        items = [_option(spec, item) for item in as_list(raw)]
        if spec.required and not items:
            raise FieldError(spec.required_message or "choose at least one")
        return list(dict.fromkeys(items))
    if isinstance(raw, bool) and spec.kind is FieldKind.yes_no:
        return raw
    text = "" if raw is None else str(raw).strip()
    if not text:
        if spec.required:
            raise FieldError(spec.required_message or "is required")
        return None
    if len(text) > spec.max_length:
        raise FieldError(f"is too long ({len(text)} characters, at most {spec.max_length})")
    if spec.expects and (problem := justification_problem(
            text, expects=spec.expects, min_chars=min_chars, min_words=min_words)):
        raise FieldError(problem)
    if spec.kind is FieldKind.date:
        try:
            return parse_date(text, today=today)
        except ValueError:
            raise FieldError(f"'{text}' is not a date ({DATE_HINT})") from None
    if spec.kind is FieldKind.yes_no:
        lowered = text.lower()
        if lowered not in YES_WORDS + NO_WORDS:
            try:
                lowered = _option(spec, text)
            except FieldError:
                raise FieldError("answer yes or no (" + ", ".join(
                    f"{code} = {o.label}" for code, o in spec.codes()) + ")") from None
        return lowered in YES_WORDS
    if spec.kind is FieldKind.choice:
        return _option(spec, text)
    return text


def validate(form: Form, raw: Mapping[str, object], *, today: date | None = None,
             min_chars: int = DEFAULT_MIN_CHARS, min_words: int = DEFAULT_MIN_WORDS
             ) -> dict[str, Any]:
    """Check each field against its definition; raise FormErrors naming every bad field.
    A dependent question whose condition does not hold is ignored (stored as no answer); a
    justification field (`expects` set) must also have substance (`justification_problem`)."""
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    unknown = set(raw) - {f.name for f in form.fields}
    for name in sorted(unknown):
        errors[name] = "is not a field of this form"
    for spec in form.fields:
        if not shown(spec, clean):
            clean[spec.name] = [] if spec.kind is FieldKind.multi_choice else None
            continue
        try:
            clean[spec.name] = check_field(spec, raw.get(spec.name), today=today,
                                           min_chars=min_chars, min_words=min_words)
        except FieldError as error:
            errors[spec.name] = str(error)
            clean[spec.name] = [] if spec.kind is FieldKind.multi_choice else None
    if errors:
        raise FormErrors(errors)
    return clean


def check_country(code: str | None) -> str:
    value = (code or "").strip().upper()
    if not COUNTRY_CODE.match(value):
        raise FormErrors({"issuing_country": "use the two-letter ISO code, e.g. MX"})
    return value
