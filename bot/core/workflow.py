"""The registry of the directive's steps: every button and form the core answers is declared
once, in its step's module under `bot.core.steps`, and found here. `Core` dispatches through
`act_for_action` / `act_for_form` and `perform`; the thread asks `step_at` for a stage's prompt.

`perform` also checks each move against the declarations: a step that moves a case along a
transition it did not declare fails loudly (and its interaction rolls back)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any, NamedTuple

from bot.core.context import Ctx
from bot.core.labels import STAGE_LABELS
from bot.core.steps import (
    any_stage,
    approval,
    disclosure,
    documents,
    doubt,
    ready,
    reminder_actions,
    representations,
    response,
    review,
    use_authorization,
    usncb,
    validity,
)
from bot.core.steps.base import Act, FormInputs, Step, check_move, edges_of, guard
from bot.core.steps.opening import START
from bot.messages import ActionId, Form, FormId
from storage.models import Case, Stage

# In checklist order; a new step's module adds its STEP here.
STEPS: tuple[Step, ...] = (
    validity.STEP,
    review.STEP,
    doubt.STEP,
    approval.STEP,
    documents.STEP,
    use_authorization.STEP,
    disclosure.STEP,
    response.STEP,
    representations.STEP,
    ready.STEP,
    any_stage.STEP,
    usncb.STEP,
    reminder_actions.STEP,
)


class ChecklistLine(NamedTuple):
    """One line of a case's checklist, as its thread shows it."""

    stage: Stage
    title: str
    sections: str


@cache
def checklist() -> tuple[ChecklistLine, ...]:
    """The checklist's lines, in the order of `STEPS`: each step that declares one."""
    return tuple(ChecklistLine(step.stage, f"{step.checklist.number}. {STAGE_LABELS[step.stage]}",
                               step.checklist.sections)
                 for step in STEPS if step.stage is not None and step.checklist is not None)


def acts() -> tuple[Act, ...]:
    return tuple(act for step in STEPS for act in step.acts)


def act_for_action(action: ActionId) -> Act | None:
    for act in acts():
        if act.action is action:
            return act
    return None


def act_for_form(form: FormId) -> Act | None:
    for act in acts():
        if act.form is form:
            return act
    return None


def step_at(stage: Stage) -> Step | None:
    for step in STEPS:
        if step.stage is stage:
            return step
    return None


def build_form(form_id: FormId, case: Case, *, today: date, ref: int | None = None,
               automatic: tuple[str, ...] = (), webhook: bool = False,
               method: str | None = None, requested: tuple[str, ...] = (),
               received: tuple[str, ...] | None = None) -> Form:
    """The form of a step of `case` (the inputs are described on `FormInputs`)."""
    act = act_for_form(form_id)
    if act is None or act.build is None:
        raise ValueError(f"no form {form_id}")
    return act.build(FormInputs(form_id, case, today, ref, automatic, webhook, method,
                                requested, received))


def may(ctx: Ctx, case: Case, act: Act) -> None:
    """Refused unless the actor may take `act` on `case` now (before a form is shown, before
    what was typed is read, and again when the step runs)."""
    if act.before is not None:
        act.before(ctx, case)
    guard(ctx, case, act)


def perform(ctx: Ctx, case: Case, act: Act, values: dict[str, Any], ref: int | None) -> None:
    """Who may, then the step, then: did the case move only as the step declares?"""
    may(ctx, case, act)
    previous = case.stage
    act.run(ctx, case, values, ref)
    check_move(act, case, previous)


@dataclass(frozen=True)
class Edge:
    source: Stage | None  # None: the case does not exist yet (opening)
    target: Stage
    action: str


def graph() -> list[Edge]:
    """Every declared transition, the opening of a case first."""
    edges = [Edge(None, START, FormId.open_case.value)]
    for act in acts():
        edges += [Edge(s, t, act.action.value) for s, t in sorted(
            edges_of(act), key=lambda e: (list(Stage).index(e[0]), list(Stage).index(e[1])))]
    return edges
