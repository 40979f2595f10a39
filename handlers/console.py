"""The local console: a real chat backend for the terminal (`noticebot shell`).

It only parses what is typed, calls the core and prints what comes back. Buttons are numbered
as they appear; typing the number clicks it as the current user. Forms are filled field by field.
It reads from any text stream, so sessions can be scripted and tested.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from datetime import date
from typing import Any, TextIO

from bot.app import load_roster_text, sample_roster_text
from bot.core.forms import FieldError, check_field, narrowed, shown
from bot.core.service import Core
from bot.delivery.loop import deliver_now
from bot.messages import (
    ActionValue,
    FieldKind,
    Form,
    FormField,
    FormId,
    Mark,
    Message,
    Outcome,
    render_mentions,
)
from bot.roster import RosterError
from bot.schedule.runner import sweep_once
from config.platforms import Platform
from handlers.console_fields import default_answer, describe_answer, quiet_field, wire_value
from handlers.console_transport import ConsoleTransport

MARKUP = re.compile(r"`([^`]*)`")  # chat markup the console prints as plain text
CONSOLE_CHANNEL = "C0CONSOLE"
MARK_COLOURS = {Mark.good: "32", Mark.adverse: "31", Mark.refused: "31;1", Mark.waiting: "33",
                 Mark.reopened: "33"}
DEFAULT_WIDTH = 96
MIN_WIDTH = 40
HELP = """Console commands:
  /notice ...        a noticebot command, e.g. /notice open, /notice list, /notice help
  N or click N       press button N (as the current user)
  press LABEL        press a button by its label (the current case's first; exact labels first)
  as USER            act as another roster user (id or name, e.g. as U0SUP1, as sam)
  as USER COMMAND    run one command as USER, e.g. as U0SUP1 press Approve
  whoami, users      who you are; everyone on the roster
  thread CASE-ID     a case's thread as it stands now, with its buttons
  help, quit
While filling a form: choices by number, code or value (several comma-separated); dates as
2026-12-01, 12/01/2026, today or +14d; Enter keeps the default shown in [brackets]; 'more'
also asks the optional and already filled fields; 'cancel' abandons the form."""



class _Signal:
    """What a person typed instead of an answer."""


CANCEL, MORE = _Signal(), _Signal()


class EndOfInput(Exception):
    pass


class Console:
    def __init__(self, core: Core, *, stdin: TextIO, stdout: TextIO, interactive: bool,
                 user: str | None = None, load_sample: bool | None = None,
                 width: int | None = None, colour: bool | None = None) -> None:
        # The console is this process's one surface: what it queues is delivered to it, and
        # it never takes another platform's rows from a shared database.
        if core.settings.platforms != (Platform.console,):
            core.settings = core.settings.model_copy(update={"platforms": (Platform.console,)})
        self.core = core
        # Marks in colour on a terminal (green done, red adverse or refused, yellow waiting),
        # unless NO_COLOR is set; never in scripts or transcripts.
        self.colour = (interactive and not os.environ.get("NO_COLOR")) if colour is None \
            else colour
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = interactive
        self.user = user or ""
        self.load_sample = load_sample
        self.width = width
        self.buttons: dict[int, tuple[str, ActionValue]] = {}
        self.current_case: str | None = None  # the case last acted on: `press` prefers it
        self.typed = 0  # lines read from the person: what a walk through a case costs
        self._names: dict[str, str] = {}

    # --- I/O ---------------------------------------------------------------------------------

    def columns(self) -> int:
        """The terminal's width, so that an 80-column terminal does not split words."""
        if self.width is None:
            self.width = (shutil.get_terminal_size((DEFAULT_WIDTH, 40)).columns
                          if self.interactive else DEFAULT_WIDTH)
        return max(MIN_WIDTH, self.width)

    def say(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def wrap(self, text: str, first: str, rest: str | None = None) -> None:
        if not text:
            self.say(first.rstrip())
            return
        self.say(textwrap.fill(text, self.columns() - 1, initial_indent=first,
                               subsequent_indent=first if rest is None else rest,
                               break_on_hyphens=False))

    def ask(self, prompt: str) -> str:
        if self.interactive:
            self.stdout.write(prompt)
            self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise EndOfInput
        self.typed += 1
        answer = line.rstrip("\n")
        if not self.interactive:
            self.say(f"{prompt}{answer}")
        return answer.strip()

    def name(self, user_id: str) -> str:
        if user_id not in self._names:
            self._names[user_id] = self.core.display_name(user_id)
        return self._names[user_id]

    def plain(self, text: str) -> str:
        """Chat text as the terminal shows it: people by name, no markup characters."""
        return MARKUP.sub(r"\1", render_mentions(text, lambda user: f"@{self.name(user)}"))

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
        # What waited for delivery at start (a fresh sample roster sets off a manager's digest)
        # is for other people: it is delivered, and not printed into the first screen.
        self.deliver(others_quietly=True)

    def _first_officer(self) -> str:
        return next((user for user, _, roles, _ in self.core.roster() if "officer" in roles), "")

    def handle(self, line: str) -> None:
        words = line.split()
        head = words[0].lower()
        if head == "help":
            self.say(HELP)
        elif head == "as" and len(words) >= 2:
            self._as(words[1], " ".join(words[2:]))
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
            self.click(button[1])
        elif head == "press" and len(words) > 1:
            self._press(line.split(None, 1)[1].strip())
        else:
            self.say(f"Unknown input '{line}'. Type 'help'.")

    def click(self, value: ActionValue) -> None:
        self.current_case = value.case_id or self.current_case
        self.show(self.core.click(actor=self.user, value=value))

    def _as(self, who: str, command: str) -> None:
        """Switch user (or run one command as them). Only roster users: a typo must not leave
        the console acting as nobody."""
        user = self._find_user(who)
        if user is None:
            return
        if not command:
            self.user = user
            self.say(f"You are now {self.name(user)} ({user}).")
            return
        previous, self.user = self.user, user
        try:
            self.say(f"(as {self.name(user)})")
            self.handle(command)
        finally:
            self.user = previous

    def _find_user(self, who: str) -> str | None:
        roster = self.core.roster()
        wanted = who.strip().lstrip("@").lower()
        exact = [user for user, _, _, _ in roster if user.lower() == wanted]
        named = [user for user, name, _, _ in roster
                 if any(part.lower() == wanted for part in name.split())
                 or name.lower() == wanted]
        found = exact or named
        if len(found) == 1:
            return found[0]
        if found:
            self.say(f"'{who}' could be " + ", ".join(
                f"{self.name(u)} ({u})" for u in found) + "; use the user id.")
        else:
            self.say(f"'{who}' is not on the roster; still {self.name(self.user)} "
                     f"({self.user}). Type 'users' for the roster.")
        return None

    def _press(self, wanted: str) -> None:
        """The button whose label is `wanted` (else starts with it): exact labels first, then
        the current case's; among the same button shown twice, the newest. A label that still
        names buttons of different cases is ambiguous: say so rather than guess."""
        lowered = wanted.lower()
        matches = [n for n, (label, _) in self.buttons.items()
                   if label.lower().startswith(lowered)]
        if not matches:
            self.say(f"No button labelled '{wanted}'.")
            return
        exact = [n for n in matches if self.buttons[n][0].lower() == lowered]
        matches = exact or matches
        mine = [n for n in matches if self.buttons[n][1].case_id == self.current_case]
        matches = mine or matches
        cases = {self.buttons[n][1].case_id for n in matches}
        labels = {self.buttons[n][0] for n in matches}
        if len(cases) > 1 or (not exact and len(labels) > 1):
            newest: dict[tuple[str | None, str], int] = {}
            for n in matches:
                newest[(self.buttons[n][1].case_id, self.buttons[n][0])] = n
            self.say(f"'{wanted}' is ambiguous: " + "; ".join(
                f"[{n}] {label}" + (f" ({case})" if case else "")
                for (case, label), n in sorted(newest.items(), key=lambda item: item[1]))
                + ". Type the number.")
            return
        self.click(self.buttons[max(matches)][1])

    def _users(self) -> None:
        for user, name, roles, aor in self.core.roster():
            self.say(f"  {user:10} {name:22} {', '.join(roles):20} {aor or ''}")

    def _thread(self, case_id: str) -> None:
        """The case as it stands in the database: works after a restart, buttons included."""
        outcome = self.core.case_thread(actor=self.user, case_id=case_id)
        if not outcome.ok:
            self.show(outcome)
            return
        self.current_case = outcome.case_id
        for index, message in enumerate(outcome.private):
            kind = "channel" if index == 0 else "thread"
            self.print_message(kind, case_id, message)

    # --- rendering ---------------------------------------------------------------------------

    def show(self, outcome: Outcome) -> None:
        if outcome.case_id:
            self.current_case = outcome.case_id
        for message in outcome.private:
            self.print_message("private", self.user, message)
        if outcome.form is not None:
            self.fill(outcome.form)
        self.deliver()

    def deliver(self, *, others_quietly: bool = False) -> None:
        """Run the due sweeps (reminders, digests, USNCB requests), then act as the relay:
        print every queued outgoing message of the console (the delivery loop, in order)."""
        sweep_once(self.core)
        quiet = 0

        def show(kind: str, destination: str, message: Message, updated: bool) -> None:
            nonlocal quiet
            if others_quietly and kind == "dm" and destination != self.user:
                quiet += 1
                return
            self.print_message(kind, destination, message, updated=updated)

        deliver_now(engine=self.core.engine, transport=ConsoleTransport(show),
                    clock=self.core.clock)
        if quiet:
            self.say(f"({quiet} direct message(s) for other people delivered, not shown.)")

    def print_message(self, kind: str, destination: str, message: Message, *,
                      updated: bool = False) -> None:
        where = {
            "channel": f"#{destination}",
            "thread": f"thread {destination}",
            "dm": f"DM to @{self.name(destination)}",
            "private": f"only @{self.name(destination)} sees this",
        }.get(kind, destination)
        tag = " (updated)" if updated else ""
        title = self.plain(message.title)
        section = f"  [{message.section}]" if message.section else ""
        heading = f"── {where}{tag} ── {title}{section}"
        if self.colour and message.mark in MARK_COLOURS:
            # Colour whole lines only, so wrapping never splits an escape sequence.
            self.say(f"\x1b[{MARK_COLOURS[message.mark]}m" + textwrap.fill(
                heading, self.columns() - 1, subsequent_indent="   ", break_on_hyphens=False)
                + "\x1b[0m")
        else:
            self.wrap(heading, "", "   ")
        for paragraph in self.plain(message.text).splitlines():
            self.wrap(paragraph, "   ")
        if message.preformatted:
            self._verbatim(message.preformatted)
        if message.fields:
            self.wrap(" | ".join(f"{k}: {self.plain(v)}" for k, v in message.fields), "   ")
        for note in message.notes:
            self.wrap(self.plain(note), "   · ", "     ")
        if message.actions:
            labels = []
            for action in message.actions:
                number = len(self.buttons) + 1
                self.buttons[number] = (action.label, action.value)
                labels.append(f"[{number}] {action.label}")
            self.wrap("  ".join(labels), "   ")

    def _verbatim(self, text: str) -> None:
        """Text to copy elsewhere (a USNCB request): printed as is, no prefix, no wrapping."""
        self.say("─── copy from here ───")
        for line in text.splitlines():
            self.say(line)
        self.say("─── to here ───")

    # --- forms -------------------------------------------------------------------------------

    def fill(self, form: Form) -> None:
        """Ask the questions a person has to answer, one by one, checking each at once.
        Fields with a default and optional free text are filled in and listed; 'more' asks
        them too. Dependent questions are asked only when their condition holds."""
        self.say(f"┌ {form.title}" + (f"  [{form.section}]" if form.section else ""))
        if form.intro:
            for paragraph in self.plain(form.intro).splitlines():
                self.wrap(paragraph, "│ ")
        if form.preformatted:
            self._verbatim(form.preformatted)
        today = self.core.clock.now().date()
        clean: dict[str, Any] = {}
        forced: set[str] = set()
        answered: set[str] = set()
        expand = False
        upfront = [f for f in form.fields if quiet_field(f) and f.when is None]
        if upfront:
            for spec in upfront:
                clean[spec.name] = default_answer(spec, today)
            self.wrap("Filled in: " + "; ".join(
                f"{f.label}: {describe_answer(f, clean[f.name])}" for f in upfront)
                + ". Type 'more' at any question to change these.", "│ ", "│   ")
        while True:
            asked = False
            for spec in form.fields:
                if not shown(spec, clean):
                    clean.pop(spec.name, None)
                    continue
                if quiet_field(spec) and not expand and spec.name not in forced:
                    if spec.name not in clean:  # a dependent field, now that it applies
                        clean[spec.name] = default_answer(spec, today)
                        self.wrap(f"{spec.label}: {describe_answer(spec, clean[spec.name])} "
                                  "(filled in)", "│ ", "│   ")
                    continue
                if spec.name in answered and spec.name not in forced:
                    continue  # answered in an earlier round
                question = narrowed(spec, clean)  # only the items it can be about
                answer = self._ask_field(question, today)
                asked = True
                if answer is MORE:
                    expand = True
                    answer = self._ask_field(question, today)
                if answer is CANCEL or answer is MORE:
                    self.say("└ Form cancelled; nothing was submitted.")
                    return
                clean[spec.name] = answer
                answered.add(spec.name)
                forced.discard(spec.name)
            if expand and any(shown(f, clean) and f.name not in answered for f in form.fields):
                continue  # 'more' was typed: now the fields filled in before it
            if not asked and not forced:
                reply = self.ask("│ Enter to submit, 'more' to change, 'cancel': ").lower()
                if reply == "cancel":
                    self.say("└ Form cancelled; nothing was submitted.")
                    return
                if reply == "more":
                    expand = True
                    continue
            values = {name: wire_value(value) for name, value in clean.items()}
            outcome = self._submit(form, values)
            if not outcome.errors:
                self.show(outcome)
                return
            self.say("│ Please correct:")
            for name, error in outcome.errors.items():
                label = next((f.label for f in form.fields if f.name == name), name)
                self.wrap(f"{label}: {error}", "│   ✗ ", "│     ")
            forced = {f.name for f in form.fields if f.name in outcome.errors}
            if not forced:
                self.show(outcome)
                return

    def _submit(self, form: Form, values: dict[str, object]) -> Outcome:
        if form.form_id is FormId.open_case:
            return self.core.submit(actor=self.user, form=form.form_id, values=values,
                                    channel=CONSOLE_CHANNEL)
        return self.core.submit(actor=self.user, form=form.form_id, values=values,
                                case_id=form.case_id, ref=form.ref)

    def _ask_field(self, spec: FormField, today: date) -> Any:
        """One question, asked until its answer is usable; CANCEL or MORE if typed."""
        need = "" if spec.required else " (optional)"
        default = spec.initial_label() if spec.initial else ""
        if spec.kind is FieldKind.multi_choice and spec.initial:
            codes = {o.value: code for code, o in spec.codes()}
            several = (spec.initial,) if isinstance(spec.initial, str) else spec.initial
            default = ",".join(codes.get(v, v) for v in several)
        hint = f" ({spec.hint})" if spec.hint else ""
        if spec.options:
            choices = [f"{code}) {o.label}" for code, o in spec.codes()]
            line = f"│ {spec.label}{need}: {'  '.join(choices)}"
            if len(line) <= self.columns() - 1:
                self.say(line)
            else:
                self.wrap(f"{spec.label}{need}:", "│ ")
                for choice in choices:
                    self.wrap(choice, "│   ", "│      ")
        shown_default = f" [{default}]" if default else ""
        if spec.kind is FieldKind.multi_choice:
            how = ("at least one, comma-separated" if spec.required
                   else "comma-separated, Enter for none")
            prompt = f"│ choices ({how}){shown_default}: "
        elif spec.options:
            prompt = f"│ choice{need}{shown_default}: "
        else:
            prompt = f"│ {spec.label}{need}{hint}{shown_default}: "
        if len(prompt) > self.columns() - 12:  # leave room to type on the same line
            self.wrap(prompt[2:].rstrip().rstrip(":"), "│ ", "│   ")
            prompt = "│ > "
        while True:
            answer = self.ask(prompt)
            if answer.lower() == "cancel":
                return CANCEL
            if answer.lower() == "more":
                return MORE
            raw: object = answer
            if not answer and spec.initial:
                raw = spec.initial
            try:
                return check_field(spec, raw, today=today)
            except FieldError as error:
                self.wrap(f"{spec.label}: {error}", "│   ✗ ", "│     ")
                self._retry_line(spec)

    def _retry_line(self, spec: FormField) -> None:
        """Before a question is asked again (a scripted console supplies the next answer)."""


def run_console(core: Core, *, stdin: TextIO, stdout: TextIO, interactive: bool,
                user: str | None = None, load_sample: bool | None = None,
                width: int | None = None) -> int:
    try:
        return Console(core, stdin=stdin, stdout=stdout, interactive=interactive, user=user,
                       load_sample=load_sample, width=width).run()
    except RosterError as exc:
        stdout.write(f"{exc}\n")
        return 2
