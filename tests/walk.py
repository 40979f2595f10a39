"""The canonical walk of a case, written once as data and replayed by every surface's driver:
the core (`walk_core` in tests/helpers.py), the console (tests/handlers/test_console_walk.py)
and Slack (tests/handlers/slack/test_slack_flow.py).

Each move is who acts, which button they press, and the form's answers as the core takes them
(option values, ISO dates); each driver turns them into what its surface types or submits. The
case: a Red Notice opened for immigration proceedings, no extradition request, documents
received and better evidence, use authorization granted, documents given to the person, who
responds without contesting; then the use is recorded and the case closes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from bot.messages import ActionId
from storage.models import Stage

OFFICER, FRO = "U0OFF1", "U0SUP1"
TODAY = "2026-11-23"
CLEAN_REVIEW: dict[str, Any] = {
    "sources": ["interpol_guidance", "law_enforcement_systems", "usg_reports",
                "public_information"],
    "outcome": "no_indications",
}


@dataclass(frozen=True)
class Move:
    actor: str
    action: ActionId
    # The form's answers; None: the button opens no form.
    values: dict[str, Any] | None = None
    # The stage the case is in once the move is done, where the walk checks it.
    reaches: Stage | None = None


CANONICAL_WALK: tuple[Move, ...] = (
    Move(OFFICER, ActionId.validity_sent, {"sent_on": TODAY, "method": "USNCB e-mail"}),
    Move(OFFICER, ActionId.validity_answer, {"status": "active", "answered_on": TODAY},
         Stage.review),
    Move(OFFICER, ActionId.review, CLEAN_REVIEW, Stage.approval),
    Move(OFFICER, ActionId.request_approval),
    Move(FRO, ActionId.approve, reaches=Stage.documents),
    Move(OFFICER, ActionId.documents_sent, {"documents": ["warrant", "charging"],
                                            "sent_on": TODAY, "method": "USNCB e-mail"}),
    Move(OFFICER, ActionId.documents_answer,
         {"answer": "received", "received": ["warrant"], "answered_on": TODAY}),
    Move(OFFICER, ActionId.documents_review, {"indications": "no", "better_evidence": "yes"},
         Stage.use_authorization),
    Move(OFFICER, ActionId.use_auth_sent,
         {"purpose": "immigration", "sent_on": TODAY, "method": "OPLA"}),
    Move(OFFICER, ActionId.use_auth_answer, {"answer": "granted", "answered_on": TODAY},
         Stage.disclosure),
    Move(OFFICER, ActionId.disclosure,
         {"provided_on": TODAY, "provided": "warrant copy", "respond_by": "2026-12-14"},
         Stage.awaiting_response),
    Move(OFFICER, ActionId.person_response, {"response": "not_contested"},
         Stage.representations),
    Move(OFFICER, ActionId.representations, {"not_a_warrant": "yes", "i213": "yes"},
         Stage.ready),
    Move(OFFICER, ActionId.record_outcome,
         {"outcome": "immigration_proceedings", "used_on": TODAY}, Stage.closed),
)


def walk_until(action: ActionId) -> tuple[Move, ...]:
    """The walk's moves before the first press of `action`."""
    for index, move in enumerate(CANONICAL_WALK):
        if move.action is action:
            return CANONICAL_WALK[:index]
    raise ValueError(f"{action} is not in the canonical walk")


def played_by(moves: Iterable[Move], *, officer: str = OFFICER,
              approver: str = FRO) -> list[Move]:
    """The same moves with another officer or approver acting."""
    who = {OFFICER: officer, FRO: approver}
    return [replace(move, actor=who[move.actor]) for move in moves]
