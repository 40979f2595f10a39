"""Scripted console sessions: the console is a real backend and the tests talk through it."""

from __future__ import annotations

import io

import pytest
from sqlmodel import Session, select

from bot.core.service import Core
from handlers.console_script import ScriptedConsole, ScriptItem
from storage import record
from storage.models import Case, CloseReason, Stage
from storage.vault import Vault
from tests.conftest import TEST_KEY

OPEN_ANSWERS: dict[str, str | list[str]] = {
    "notice_type": "1",  # Red Notice
    "notice_reference": "A-4417/9-2024",
    "subject_name": "Ivan Consoleperson",
    "subject_identifiers": "DOB 1979-02-03",
    "issuing_country": "mx",
    "offense_summary": "Armed robbery",
    "intended_use": "2",  # immigration proceedings
    "extradition_pending": "no",
}
OPEN_FORM: list[ScriptItem] = ["/notice open", OPEN_ANSWERS]
REVIEW_CLEAN: dict[str, str | list[str]] = {"sources": "1,2,3,4", "outcome": "1"}

WALK_TO_READY: list[ScriptItem] = [
    *OPEN_FORM,
    "press Record request sent", {"method": "USNCB e-mail"},
    "press Record answer", {"status": "1"},
    "press Record preliminary review", REVIEW_CLEAN,
    "press Request supervisor approval",
    "as U0OFF2", "press Approve",  # an officer outside the chain is refused
    "as U0SUP1", "press Approve",
    "as U0OFF1",
    "press Record documents request sent", {"documents": "1,3"},
    "press Record answer", {"answer": "1", "received": "1"},
    "press Review and decide", {"indications": "no", "better_evidence": "yes"},
    "press Record use authorization request sent", {"submit": ""},
    "press Record answer", {"answer": "1"},
    "press Record documents provided", {
        "provided": "warrant and charging documents",
        # before the documents were provided: refused inline, asked again
        "respond_by": ["2026-11-20", "2026-12-14"],
    },
    "press Record the person's response", {"response": "2"},  # responded, not contesting
    "press Acknowledge and finish", {"not_a_warrant": "yes", "i213": "yes"},
    "quit",
]


def run(core: Core, lines: list[ScriptItem], *, user: str | None = None) -> str:
    out = io.StringIO()
    console = ScriptedConsole(core, lines, stdout=out, user=user, load_sample=None)
    assert console.run() == 0
    return out.getvalue()


def only_case(core: Core) -> Case:
    with Session(core.engine) as session:
        cases = session.exec(select(Case)).all()
    assert len(cases) == 1
    return cases[0]


def test_console_walks_a_case_to_ready_for_immigration_proceedings(core: Core) -> None:
    transcript = run(core, WALK_TO_READY)
    case = only_case(core)
    assert case.stage == Stage.ready, transcript
    assert "Threshold criteria met" in transcript
    assert "give the person a meaningful time to respond" in transcript
    assert "Only the FRO or a designee of AOR HOU may decide this." in transcript
    assert "DM to @Sam Supervisor" in transcript
    assert "thread RN-2026-0001 (updated)" in transcript
    # The subject's name never reaches the channel or thread lines of the transcript.
    for line in transcript.splitlines():
        if line.startswith("── #") or line.startswith("── thread"):
            assert "Consoleperson" not in line
    with Session(core.engine) as session:
        assert record.verify(session, Vault((TEST_KEY,))).ok


VALIDITY_ACTIVE: list[ScriptItem] = [
    "press Record request sent", {"method": "USNCB e-mail"},
    "press Record answer", {"status": "1"},
]
REVIEW = "press Record preliminary review"
CLOSING_PATHS: dict[CloseReason, list[ScriptItem]] = {
    CloseReason.misuse: [*VALIDITY_ACTIVE, REVIEW,
                         {"indicators": "8", "sources": "1,2,3,4", "outcome": "3"}],
    CloseReason.prohibited: [*VALIDITY_ACTIVE, REVIEW,
                             {"prohibited": "B", "sources": "1,2,3,4", "outcome": "3"}],
    CloseReason.doubt_unresolved: [*VALIDITY_ACTIVE, REVIEW,
                                   {"indicators": "5", "sources": "1,2,3,4", "outcome": "2"},
                                   "press Conclude", {"resolution": "3",
                                                      "justification": "no clarity after "
                                                      "research"}],
    CloseReason.denied: [*VALIDITY_ACTIVE, REVIEW, REVIEW_CLEAN,
                         "press Request supervisor approval", "as U0SUP1", "press Deny",
                         {"reason": "not enough basis for use"}],
    CloseReason.use_not_authorized: [
        *VALIDITY_ACTIVE, REVIEW, REVIEW_CLEAN,
        "press Request supervisor approval", "as U0SUP1", "press Approve", "as U0OFF1",
        "press Record documents request sent", {"documents": "1"},
        "press Record no response", "press Review and decide",
        {"necessity": "the removal hearing is set"},
        "press Record use authorization request sent", {"submit": ""},
        "press Record answer", {"answer": "2"}],
    CloseReason.notice_inactive: ["press Report notice inactive",
                                  {"status": "2", "note": "USNCB bulletin"}],
    CloseReason.withdrawn: ["press Withdraw case", {"reason": "opened by mistake"}],
}


@pytest.mark.parametrize("reason", list(CLOSING_PATHS), ids=str)
def test_console_case_ends_on_each_closing_path(core: Core, reason: CloseReason) -> None:
    transcript = run(core, [*OPEN_FORM, *CLOSING_PATHS[reason]])
    assert only_case(core).close_reason == reason, transcript
    assert "Case closed" in transcript


def test_console_empty_database_offers_the_sample_roster(bare_core: Core) -> None:
    transcript = run(bare_core, ["y", "whoami", "quit"])
    assert "Load the bundled sample roster?" in transcript
    assert "Olivia Officer (U0OFF1)" in transcript


def test_console_inactive_notice_closes_the_case(core: Core) -> None:
    transcript = run(core, [
        *OPEN_FORM,
        "press Record request sent", {"method": "phone"},
        "press Record answer", {"status": "3"},  # withdrawn
    ])
    case = only_case(core)
    assert case.close_reason == CloseReason.notice_inactive, transcript
    assert "Case closed" in transcript


def test_console_withdrawal_and_bad_input_are_handled(core: Core) -> None:
    transcript = run(core, [
        "/notice open", {**OPEN_ANSWERS, "issuing_country": ["Mexico", "MX"]},  # corrected
        "press Withdraw case", {"reason": "duplicate of an earlier case"},
        "frobnicate",
        "press Nothing like this",
    ])
    assert "use the two-letter ISO code" in transcript
    assert only_case(core).close_reason == CloseReason.withdrawn
    assert "Unknown input 'frobnicate'" in transcript
    assert "No button labelled" in transcript


def test_console_untrained_officer_is_refused(core: Core) -> None:
    transcript = run(core, ["/notice open"], user="U0OFF2")
    assert "§5.3" in transcript and "Open a notice case" not in transcript


def test_console_cancelled_form_writes_no_case(core: Core) -> None:
    run(core, ["/notice open", {"notice_type": "1", "notice_reference": "cancel"}])
    with Session(core.engine) as session:
        assert session.exec(select(Case)).first() is None


def test_console_shows_the_new_stages_and_the_end_of_a_case(core: Core) -> None:
    """The response window (§5.1(6)) and the recorded outcome render in the console."""
    walk = [line for line in WALK_TO_READY if line != "quit"]
    transcript = run(core, [
        *walk,
        "press Record how the notice was used", {"outcome": "2"},  # immigration proceedings
        "thread RN-2026-0001",
        "quit",
    ])
    case = only_case(core)
    assert case.close_reason == CloseReason.completed, transcript
    assert "Waiting for the person's response" in transcript
    assert "Use recorded: it was introduced in immigration proceedings" in transcript


def test_console_return_for_changes_reaches_the_officer(core: Core) -> None:
    transcript = run(core, [
        *OPEN_FORM, *VALIDITY_ACTIVE, REVIEW, REVIEW_CLEAN,
        "press Request supervisor approval",
        "as U0SUP2", "press Return for changes", {"reason": "Add the State Department's view"},
        "as U0OFF1", REVIEW, REVIEW_CLEAN,
        "quit",
    ])
    case = only_case(core)
    assert case.stage == Stage.approval and case.close_reason is None, transcript
    assert "DM to @Olivia Officer" in transcript
    assert "Add the State Department's view" in transcript
    assert "Returned for changes by" in transcript
    # The reason is the approver's free text: DM only, never the channel or the thread.
    for line in transcript.splitlines():
        if line.startswith("── #") or line.startswith("── thread"):
            assert "State Department" not in line
