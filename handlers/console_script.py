"""The console driven by a script, for tests and demonstrations: forms are answered by field
name, as a person would answer the questions actually asked."""

from __future__ import annotations

import io
from datetime import date
from typing import Any, TextIO

from bot.core.service import Core
from bot.messages import Form, FormField
from handlers.console import Console, EndOfInput
from handlers.console_fields import quiet_field

ScriptItem = str | dict[str, str | list[str]]


class ScriptedConsole(Console):
    """The console driven by a script whose forms are answered by field name, as a person
    would answer the questions actually asked: a question with no scripted answer gets Enter,
    and a scripted answer whose question was never asked is an error. `typed` counts every
    line the person would have typed (Enter included).

    Script items: a line typed at the prompt, or a dict for the form that the previous line
    opened ({field: answer or [answers, one per try]}; key "submit" answers the confirmation
    line of a form that asks nothing)."""

    def __init__(self, core: Core, script: list[ScriptItem], *, stdout: TextIO,
                 user: str | None = None, load_sample: bool | None = True,
                 width: int | None = None) -> None:
        super().__init__(core, stdin=io.StringIO(""), stdout=stdout, interactive=False,
                         user=user, load_sample=load_sample, width=width)
        self.script = list(script)
        self.answers: dict[str, list[str]] | None = None
        self._next: str | None = None
        self._quiet_answers = False  # the form's answers change a filled-in field: type 'more'

    def ask(self, prompt: str) -> str:
        if self._next is not None:
            line, self._next = self._next, None
        elif self.answers is not None and self._quiet_answers:
            line, self._quiet_answers = "more", False
        elif self.answers is not None:
            tries = self.answers.get("submit") or [""]
            line = tries.pop(0)
        else:
            if not self.script:
                raise EndOfInput
            item = self.script.pop(0)
            if not isinstance(item, str):
                raise AssertionError(f"form answers {item} given where no form was open")
            line = item
        self.typed += 1
        self.say(f"{prompt}{line}")
        return line.strip()

    def fill(self, form: Form) -> None:
        item = self.script[0] if self.script else None
        given = self.script.pop(0) if isinstance(item, dict) else {}
        assert isinstance(given, dict)
        self.answers = {k: [v] if isinstance(v, str) else list(v) for k, v in given.items()}
        self._quiet_answers = any(quiet_field(f) for f in form.fields if f.name in given)
        try:
            super().fill(form)
            left = {k: v for k, v in self.answers.items() if v and k != "submit"}
            if left:
                raise AssertionError(f"{form.form_id}: never asked {sorted(left)}")
        finally:
            self.answers = None

    def _ask_field(self, spec: FormField, today: date) -> Any:
        assert self.answers is not None
        if self._quiet_answers:
            self._next, self._quiet_answers = "more", False
            return super()._ask_field(spec, today)
        tries = self.answers.get(spec.name)
        self._next = tries.pop(0) if tries else ""
        return super()._ask_field(spec, today)

    def _retry_line(self, spec: FormField) -> None:
        assert self.answers is not None
        tries = self.answers.get(spec.name)
        if not tries:
            raise AssertionError(f"{spec.name}: refused and no further answer scripted")
        self._next = tries.pop(0)
