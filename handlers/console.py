"""The local console: a real chat backend for the terminal (`noticebot shell`).

It only parses what is typed, calls the core and prints what comes back. Buttons are numbered
as they appear; typing the number clicks it as the current user. Forms are filled field by field.
It reads from any text stream, so sessions can be scripted and tested.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import TextIO

from bot.app import load_roster_text, sample_roster_text
from bot.core.service import Core
from bot.messages import ActionValue, FieldKind, Form, FormField, FormId, Message, Outcome
from bot.roster import RosterError
from bot.schedule.runner import sweep_once
from storage.models import OutboxMessage

MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")
CONSOLE_CHANNEL = "C0CONSOLE"
HELP = """Console commands:
  /notice ...        a noticebot command, e.g. /notice open, /notice list, /notice help
  N or click N       press button N (as the current user)
  press LABEL        press the newest button whose label starts with LABEL
  as USER            act as another roster user (e.g. as U0SUP1)
  whoami, users      who you are; everyone on the roster
  thread CASE-ID     show a case's thread as it stands
  help, quit
While filling a form: Enter keeps the default or skips an optional field; 'cancel' abandons it."""


class EndOfInput(Exception):
    pass


class Console:
    def __init__(self, core: Core, *, stdin: TextIO, stdout: TextIO, interactive: bool,
                 user: str | None = None, load_sample: bool | None = None) -> None:
        self.core = core
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = interactive
        self.user = user or ""
        self.load_sample = load_sample
        self.buttons: dict[int, tuple[str, ActionValue]] = {}
        self.latest: dict[str, tuple[OutboxMessage, Message]] = {}
        self._names: dict[str, str] = {}

    # --- I/O ---------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def ask(self, prompt: str) -> str:
        if self.interactive:
            self.stdout.write(prompt)
            self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise EndOfInput
        answer = line.rstrip("\n")
        if not self.interactive:
            self.say(f"{prompt}{answer}")
        return answer.strip()

    def name(self, user_id: str) -> str:
        if user_id not in self._names:
            self._names[user_id] = self.core.display_name(user_id)
        return self._names[user_id]

    def mentions(self, text: str) -> str:
        return MENTION.sub(lambda m: f"@{self.name(m.group(1))}", text)

    # --- session -----------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self._start()
            while True:
                line = self.ask(f"{self.user or '?'}> ")
                if line in ("quit", "exit"):
                    break
                if line:
                    self.handle(line)
        except EndOfInput:
            pass
        except KeyboardInterrupt:
            self.say()
        self.say("Bye.")
        return 0

    def _start(self) -> None:
        self.say("noticebot console — ICE Directive 15006.1 checklist. Type 'help'.")
        if not self.core.roster():
            load = self.load_sample
            if load is None:
                answer = self.ask("The roster is empty. Load the bundled sample roster? [Y/n] ")
                load = answer.lower() in ("", "y", "yes")
            if load:
                text = sample_roster_text(self.core.clock.now().date())
                report = load_roster_text(self.core, text, actor="console", source="sample")
                self.say(f"Sample roster loaded ({len(report.changes)} changes recorded).")
            else:
                self.say("No roster: import one with `noticebot roster import FILE`.")
        if not self.user:
            self.user = self._first_officer()
        if self.user:
            self.say(f"You are {self.name(self.user)} ({self.user}).")
        self.deliver()

    def _first_officer(self) -> str:
        return next((user for user, _, roles, _ in self.core.roster() if "officer" in roles), "")

    def handle(self, line: str) -> None:
        words = line.split()
        head = words[0].lower()
        if head == "help":
            self.say(HELP)
        elif head == "as" and len(words) == 2:
            self.user = words[1].upper()
            self.say(f"You are now {self.name(self.user)} ({self.user}).")
        elif head == "whoami":
            self.say(f"{self.name(self.user)} ({self.user})")
        elif head == "users":
            self._users()
        elif head == "thread" and len(words) == 2:
            self._thread(words[1].upper())
        elif head.startswith("/"):
            self.show(self.core.command(actor=self.user, text=line, channel=CONSOLE_CHANNEL))
        elif head.isdigit() or (head == "click" and len(words) == 2 and words[1].isdigit()):
            number = int(words[-1])
            button = self.buttons.get(number)
            if button is None:
                self.say(f"There is no button [{number}].")
                return
            self.show(self.core.click(actor=self.user, value=button[1]))
        elif head == "press" and len(words) > 1:
            wanted = line.split(None, 1)[1].strip().lower()
            matches = [n for n, (label, _) in self.buttons.items()
                       if label.lower().startswith(wanted)]
            if not matches:
                self.say(f"No button labelled '{wanted}'.")
                return
            self.show(self.core.click(actor=self.user, value=self.buttons[max(matches)][1]))
        else:
            self.say(f"Unknown input '{line}'. Type 'help'.")

    def _users(self) -> None:
        for user, name, roles, aor in self.core.roster():
            self.say(f"  {user:10} {name:22} {', '.join(roles):20} {aor or ''}")

    def _thread(self, case_id: str) -> None:
        found = False
        for key, (row, message) in self.latest.items():
            if key.startswith(f"{case_id}:"):
                found = True
                self.print_message(row.destination_kind, row.destination, message)
        if not found:
            self.say(f"No thread seen for {case_id} in this session.")

    # --- rendering ---------------------------------------------------------------------------

    def show(self, outcome: Outcome) -> None:
        for message in outcome.private:
            self.print_message("private", self.user, message)
        if outcome.form is not None:
            self.fill(outcome.form)
        self.deliver()

    def deliver(self) -> None:
        """Run the due sweeps (reminders, digests, USNCB requests), then act as the relay:
        print every queued outgoing message."""
        sweep_once(self.core)
        for row in self.core.take_outbox():
            message = Message.from_dict(row.payload)
            updated = message.key is not None and message.key in self.latest
            if message.key is not None:
                self.latest[message.key] = (row, message)
            self.print_message(row.destination_kind, row.destination, message, updated=updated)

    def print_message(self, kind: str, destination: str, message: Message, *,
                      updated: bool = False) -> None:
        where = {
            "channel": f"#{destination}",
            "thread": f"thread {destination}",
            "dm": f"DM to @{self.name(destination)}",
            "private": f"only @{self.name(destination)} sees this",
        }.get(kind, destination)
        tag = " (updated)" if updated else ""
        title = self.mentions(message.title)
        section = f"  [{message.section}]" if message.section else ""
        self.say(f"── {where}{tag} ── {title}{section}")
        for paragraph in self.mentions(message.text).splitlines():
            self.say(textwrap.fill(paragraph, 96, initial_indent="   ",
                                   subsequent_indent="   ") if paragraph else "")
        if message.fields:
            self.say("   " + " | ".join(f"{k}: {self.mentions(v)}" for k, v in message.fields))
        for note in message.notes:
            self.say(f"   · {self.mentions(note)}")
        if message.actions:
            labels = []
            for action in message.actions:
                number = len(self.buttons) + 1
                self.buttons[number] = (action.label, action.value)
                labels.append(f"[{number}] {action.label}")
            self.say("   " + "  ".join(labels))

    # --- forms -------------------------------------------------------------------------------

    def fill(self, form: Form) -> None:
        self.say(f"┌ {form.title}" + (f"  [{form.section}]" if form.section else ""))
        if form.intro:
            self.say(textwrap.fill(self.mentions(form.intro), 96, initial_indent="│ ",
                                   subsequent_indent="│ "))
        values: dict[str, object] = {}
        pending = list(form.fields)
        while True:
            for spec in pending:
                answer = self._ask_field(spec)
                if answer is None:
                    self.say("└ Form cancelled; nothing was submitted.")
                    return
                values[spec.name] = answer
            outcome = self._submit(form, values)
            if not outcome.errors:
                self.show(outcome)
                return
            self.say("│ Please correct:")
            for name, error in outcome.errors.items():
                label = next((f.label for f in form.fields if f.name == name), name)
                self.say(f"│   {label}: {error}")
            pending = [f for f in form.fields if f.name in outcome.errors]
            if not pending:
                self.show(outcome)
                return

    def _submit(self, form: Form, values: dict[str, object]) -> Outcome:
        if form.form_id is FormId.open_case:
            return self.core.submit(actor=self.user, form=form.form_id, values=values,
                                    channel=CONSOLE_CHANNEL)
        return self.core.submit(actor=self.user, form=form.form_id, values=values,
                                case_id=form.case_id, ref=form.ref)

    def _ask_field(self, spec: FormField) -> object | None:
        optional = "" if spec.required else " (optional)"
        default = f" [{spec.initial}]" if spec.initial else ""
        hint = f" ({spec.hint})" if spec.hint else ""
        if spec.options:
            choices = [f"{i}) {o.label}" for i, o in enumerate(spec.options, 1)]
            if sum(len(c) + 2 for c in choices) + len(spec.label) < 90:
                self.say(f"│ {spec.label}{optional}: {'  '.join(choices)}")
            else:
                self.say(f"│ {spec.label}{optional}:")
                for choice in choices:
                    self.say(f"│   {choice}")
        prompt = f"│ {spec.label if not spec.options else 'choice'}{optional}{hint}{default}: "
        if spec.kind is FieldKind.multi_choice:
            prompt = "│ choices, comma-separated (Enter for none): "
        answer = self.ask(prompt)
        if answer.lower() == "cancel":
            return None
        if not answer and spec.initial:
            return spec.initial
        pick: Callable[[str], str] = lambda token: _option_value(spec, token)  # noqa: E731
        if spec.kind is FieldKind.multi_choice:
            return [pick(token.strip()) for token in answer.split(",") if token.strip()]
        if spec.kind is FieldKind.choice:
            return pick(answer) if answer else ""
        return answer


def _option_value(spec: FormField, token: str) -> str:
    if token.isdigit() and 1 <= int(token) <= len(spec.options):
        return spec.options[int(token) - 1].value
    return token


def run_console(core: Core, *, stdin: TextIO, stdout: TextIO, interactive: bool,
                user: str | None = None, load_sample: bool | None = None) -> int:
    try:
        return Console(core, stdin=stdin, stdout=stdout, interactive=interactive, user=user,
                       load_sample=load_sample).run()
    except RosterError as exc:
        stdout.write(f"{exc}\n")
        return 2
