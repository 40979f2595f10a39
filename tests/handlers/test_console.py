"""Scripted console sessions: the console is a real backend and the tests talk through it."""

from __future__ import annotations

import io

import pytest
from sqlmodel import Session, select

from bot.core.service import Core
from handlers.console import run_console
from storage import record
from storage.models import Case, CloseReason, Stage
from storage.vault import Vault
from tests.conftest import TEST_KEY

OPEN_FORM = [
    "/notice open",
    "1",  # Red Notice
    "A-4417/9-2024",
    "Ivan Consoleperson",
    "DOB 1979-02-03",
    "mx",
    "Armed robbery",
    "",  # published: unknown
    "2",  # immigration proceedings
    "no",
    "",
]
REVIEW_CLEAN = ["", "", "", "", "", "1,2,3,4", "1", ""]

WALK_TO_READY = [
    *OPEN_FORM,
    "press Record request sent", "", "USNCB e-mail", "",
    "press Record answer", "1", "", "",
    "press Record preliminary review", *REVIEW_CLEAN,
    "press Request supervisor approval",
    "as U0OFF2", "press Approve",  # an officer outside the chain is refused
    "as U0SUP1", "press Approve",
    "as U0OFF1",
    "press Record documents request sent", "1,3", "", "USNCB e-mail", "",
    "press Record answer", "1", "1", "", "",
    "press Review and decide", "no", "yes", "",
    "press Record use authorization request sent", "", "", "via OPLA", "", "",
    "press Record answer", "1", "", "",
    "press Record documents provided", "", "warrant and charging documents",
    "2026-11-20",  # before the documents were provided: refused inline, asked again
    "2026-12-14",
    "press Record the person's response", "2", "", "",  # responded without contesting
    "press Acknowledge and finish", "yes", "yes",
    "quit",
]


def run(core: Core, lines: list[str], *, user: str | None = None) -> str:
    out = io.StringIO()
    code = run_console(core, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out,
                       interactive=False, user=user)
    assert code == 0
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


VALIDITY_ACTIVE = [
    "press Record request sent", "", "USNCB e-mail", "",
    "press Record answer", "1", "", "",
]
# Review fields: prohibited, serious crime, indicators, dismissed, note, sources, outcome, notes.
CLOSING_PATHS = {
    CloseReason.misuse: [*VALIDITY_ACTIVE, "press Record preliminary review",
                         "", "", "5", "", "", "1,2,3,4", "3", ""],
    CloseReason.prohibited: [*VALIDITY_ACTIVE, "press Record preliminary review",
                             "2", "", "", "", "", "1,2,3,4", "3", ""],
    CloseReason.doubt_unresolved: [*VALIDITY_ACTIVE, "press Record preliminary review",
                                   "", "", "2", "", "", "1,2,3,4", "2", "",
                                   "press Conclude", "3", "no clarity after research"],
    CloseReason.denied: [*VALIDITY_ACTIVE, "press Record preliminary review", *REVIEW_CLEAN,
                         "press Request supervisor approval", "as U0SUP1", "press Deny",
                         "not enough basis for use"],
    CloseReason.use_not_authorized: [
        *VALIDITY_ACTIVE, "press Record preliminary review", *REVIEW_CLEAN,
        "press Request supervisor approval", "as U0SUP1", "press Approve", "as U0OFF1",
        "press Record documents request sent", "1", "", "e-mail", "",
        "press Record no response", "press Review and decide", "", "", "the removal hearing is set",
        "press Record use authorization request sent", "", "", "via OPLA", "", "",
        "press Record answer", "2", "", ""],
    CloseReason.notice_inactive: ["press Report notice inactive", "2", "USNCB bulletin"],
    CloseReason.withdrawn: ["press Withdraw case", "opened by mistake"],
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
        "press Record request sent", "", "phone", "",
        "press Record answer", "3", "", "",  # withdrawn
    ])
    case = only_case(core)
    assert case.close_reason == CloseReason.notice_inactive, transcript
    assert "Case closed" in transcript


def test_console_withdrawal_and_bad_input_are_handled(core: Core) -> None:
    transcript = run(core, [
        *OPEN_FORM[:5], "Mexico", *OPEN_FORM[6:],  # bad country code, corrected below
        "MX",
        "press Withdraw case", "duplicate of an earlier case",
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
    run(core, ["/notice open", "1", "cancel"])
    with Session(core.engine) as session:
        assert session.exec(select(Case)).first() is None


def test_console_shows_the_new_stages_and_the_end_of_a_case(core: Core) -> None:
    """The response window (§5.1(6)) and the recorded outcome render in the console."""
    walk = [line for line in WALK_TO_READY if line != "quit"]
    transcript = run(core, [
        *walk,
        "press Record how the notice was used", "2", "", "",  # immigration proceedings
        "thread RN-2026-0001",
        "quit",
    ])
    case = only_case(core)
    assert case.close_reason == CloseReason.completed, transcript
    assert "Waiting for the person's response" in transcript
    assert "Use recorded: it was introduced in immigration proceedings" in transcript


def test_console_return_for_changes_reaches_the_officer(core: Core) -> None:
    transcript = run(core, [
        *OPEN_FORM, *VALIDITY_ACTIVE, "press Record preliminary review", *REVIEW_CLEAN,
        "press Request supervisor approval",
        "as U0SUP2", "press Return for changes", "Add the State Department's view",
        "as U0OFF1", "press Record preliminary review", *REVIEW_CLEAN,
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
