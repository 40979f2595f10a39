"""What a new officer meets in the console: the canonical case's cost in typed lines, and the
frictions of issue 16 (numbers, restarts, wrapping, copying, users, labels)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from bot.core.service import Core
from handlers.console_script import ScriptedConsole, ScriptItem
from storage.models import Case, Stage, UsncbRequest
from tests.walk import CANONICAL_WALK, Move

README = Path(__file__).resolve().parents[2] / "README.md"

# The canonical Red Notice case, from opening to "ready for use", answered by field name:
# a question the script does not answer gets Enter (the shown default, or nothing).
OPEN: dict[str, str | list[str]] = {
    "notice_type": "1", "notice_reference": "A-4417/9-2024",
    "subject_name": "Ivan Consoleperson", "issuing_country": "MX",
    "offense_summary": "Armed robbery", "intended_use": "2", "extradition_pending": "2",
}
CANONICAL: list[ScriptItem] = [
    "/notice open", OPEN,
    "press Record request sent", {"method": "USNCB e-mail"},
    "press Record answer", {"status": "1"},
    "press Record preliminary review", {"sources": "1,2,3,4", "outcome": "1"},
    "press Request supervisor approval",
    "as sam press Approve",
    "press Record documents request sent", {},
    "press Record answer", {"answer": "1"},
    "press Review and decide", {"indications": "2", "better_evidence": "1"},
    "press Record use authorization request sent", {},
    "press Record answer", {"answer": "1"},
    "press Record documents provided", {"respond_by": "+21d"},
    "press Record the person's response", {"response": "2"},  # responded, not contesting
    "press Acknowledge and finish", {"not_a_warrant": "1", "i213": "1"},
]


def console(core: Core, script: list[ScriptItem], *, width: int | None = None,
            user: str | None = None) -> tuple[ScriptedConsole, str]:
    out = io.StringIO()
    runner = ScriptedConsole(core, script, stdout=out, width=width, user=user)
    assert runner.run() == 0
    return runner, out.getvalue()


def stage(core: Core, case_id: str = "RN-2026-0001") -> str:
    with Session(core.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.stage


def test_canonical_case_costs_few_typed_lines_and_the_readme_says_how_many(
        core: Core) -> None:
    runner, transcript = console(core, CANONICAL)
    assert stage(core) == Stage.ready, transcript
    # Issue 16 asked for at most 30; the README says where the remaining lines go (every
    # one a decision, a button, or the submit of a form that asks nothing). It was 63, then 36
    # before the person's response became a step of its own (§5.1(6)).
    assert runner.typed <= 38, transcript
    match = re.search(r"canonical Red Notice case takes \*\*(\d+) typed lines\*\*",
                      README.read_text("utf-8"))
    assert match is not None and int(match.group(1)) == runner.typed


class WalkConsole(ScriptedConsole):
    """The console driver of the canonical walk (tests/walk.py): each move is typed as the
    acting user clicking the newest button for it, and its form answered by field name with
    the walk's values as typed text (a choice's value, comma-separated lists, ISO dates)."""

    def __init__(self, core: Core, moves: list[Move], **kwargs: Any) -> None:
        super().__init__(core, ["/notice open", OPEN], **kwargs)
        self.moves, self.case_id, self.core = list(moves), "RN-2026-0001", core
        self.last: Move | None = None

    def ask(self, prompt: str) -> str:
        if self._next is None and self.answers is None and not self.script:
            self._check_last()
            if self.moves:
                self._queue(self.moves.pop(0))
        return super().ask(prompt)

    def _check_last(self) -> None:
        if self.last is not None and self.last.reaches is not None:
            assert stage(self.core, self.case_id) == self.last.reaches, self.last

    def _queue(self, move: Move) -> None:
        offered = [n for n, (_, value) in self.buttons.items()
                   if value.action is move.action and value.case_id == self.case_id]
        assert offered, f"no button for {move.action} offered"
        self.script.append(f"as {move.actor} click {max(offered)}")
        if move.values is not None:
            self.script.append({name: ",".join(value) if isinstance(value, list) else value
                                for name, value in move.values.items()})
        self.last = move


def test_canonical_walk_replayed_in_the_console(core: Core) -> None:
    out = io.StringIO()
    runner = WalkConsole(core, list(CANONICAL_WALK), stdout=out)
    assert runner.run() == 0, out.getvalue()
    assert not runner.moves
    assert stage(core) == Stage.closed, out.getvalue()


def test_issue16_1_yes_no_questions_take_the_numbers_they_print(core: Core) -> None:
    _, transcript = console(core, CANONICAL[:2])
    assert "1) Yes  2) No" in transcript and "answer yes or no" not in transcript
    with Session(core.engine) as session:
        case = session.exec(select(Case)).one()
    assert case.extradition_pending is False


def test_issue16_2_indicators_keep_their_numbers_and_dependent_questions_wait(
        core: Core) -> None:
    _, transcript = console(core, [*CANONICAL[:6], "press Record preliminary review", {
        "indicators": "4", "dismissed": "4",
        "dismissal_note": "an ordinary robbery charge, nothing political",
        "sources": "1,2,3,4", "outcome": "1"}])
    assert stage(core) == Stage.approval, transcript
    numbered = re.findall(r"│\s+(\d)\) Charges of the kinds misusers cite", transcript)
    assert numbered == ["4", "4"]  # the same number in both questions
    # The dismissal question offers only the indicator that is present.
    assert transcript.count("5) The person is a human-rights defender") == 1
    # No administrative dispute was named, so its follow-up question is never asked.
    assert "serious crime" not in transcript


def test_issue16_3_required_choices_say_so_and_errors_come_back_at_once(core: Core) -> None:
    _, transcript = console(core, [*CANONICAL[:6], "press Record preliminary review", {
        "sources": ["", "9", "1,2,3,4"], "outcome": "1"}])
    lines = transcript.splitlines()
    asked = next(i for i, line in enumerate(lines) if "at least one" in line)
    # The refusal is the very next line, before any other question.
    assert "choose at least one" in lines[asked + 1]
    assert "'9' is not one of" in lines[asked + 3]
    assert stage(core) == Stage.approval


def test_issue16_4_dates_as_typed_and_the_procedure_remembered(core: Core) -> None:
    _, transcript = console(core, CANONICAL)
    assert "may respond until 2026-12-14" in transcript  # +21d from 2026-11-23
    # The documents and use-authorization requests did not ask how they were sent again.
    assert transcript.count("How it was sent (local procedure) (e.g.") == 1


def test_issue16_5_thread_and_list_after_a_restart_have_buttons(core: Core) -> None:
    console(core, CANONICAL[:4])
    # A new console session: it has seen nothing of the case.
    _, transcript = console(core, ["thread RN-2026-0001", "press Record answer",
                                           {"status": "1"}])
    assert "No thread seen" not in transcript
    assert "] Record answer" in transcript
    assert stage(core) == Stage.review, transcript
    _, listed = console(core, ["/notice list", "press Record preliminary review",
                               {"sources": "1,2,3,4", "outcome": "1"}])
    assert "] Record preliminary review" in listed
    assert stage(core) == Stage.approval, listed


def test_issue16_11_wraps_to_the_terminal_and_request_text_copies_cleanly(
        core: Core) -> None:
    _, transcript = console(core, [*CANONICAL[:2], "press Record request sent",
                                          {"method": "cancel"}],
                            width=80)
    block = transcript.split("─── copy from here ───\n", 1)[1].split("─── to here ───")[0]
    assert "│" not in block and "Notice: A-4417/9-2024 (red notice)." in block
    outside = transcript.replace(block, "")
    assert max(len(line) for line in outside.splitlines()) <= 80


def test_issue16_11_as_unknown_user_warns_and_names_resolve(core: Core) -> None:
    _, transcript = console(core, ["as nobody", "whoami", "as sam", "whoami"])
    assert "'nobody' is not on the roster; still Olivia Officer (U0OFF1)" in transcript
    assert "Sam Supervisor (U0SUP1)" in transcript.split("as sam", 1)[1]


def test_issue16_11_press_prefers_the_current_case_and_reports_ambiguity(core: Core) -> None:
    second = {**OPEN, "notice_reference": "B-1/2026"}
    _, transcript = console(core, [
        *CANONICAL[:2], "/notice open", second,
        # Both cases show "Record request sent": the one just opened is meant.
        "press Record request sent", {"method": "phone"},
        # "Record" now starts two different labels of the current case.
        "press Record",
        "thread RN-2026-0001", "press record request sent", {"method": "phone"},
    ])
    assert "'Record' is ambiguous" in transcript
    with Session(core.engine) as session:
        sent = session.exec(select(UsncbRequest.case_id).order_by(col(UsncbRequest.id))).all()
    assert sent == ["RN-2026-0002", "RN-2026-0001"]


def test_issue16_10_sample_roster_does_not_print_the_managers_digest(bare_core: Core) -> None:
    out = io.StringIO()
    runner = ScriptedConsole(bare_core, ["whoami"], stdout=out, load_sample=True)
    assert runner.run() == 0
    first_screen = out.getvalue()
    assert "Weekly digest" not in first_screen and "Olivia Officer (U0OFF1)" in first_screen


def test_issue16_7_marks_have_their_own_colour_on_a_terminal(core: Core) -> None:
    out = io.StringIO()
    runner = ScriptedConsole(core, [*CANONICAL[:4], "press Record answer", {"status": "3"}],
                             stdout=out)
    runner.colour = True
    assert runner.run() == 0
    transcript = out.getvalue()
    assert "\x1b[31m── thread RN-2026-0001 (updated) ── ⛔ 1. Verify validity" in transcript
    assert "\x1b[33m── thread RN-2026-0001 (updated) ── ⏳ 1. Verify validity" in transcript
    _, plain = console(core, ["whoami"])
    assert "\x1b[" not in plain
