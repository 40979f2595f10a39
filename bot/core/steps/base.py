"""What a step declares, and the one check of who may act that every declared action runs.

A `Step` is one line of the checklist (a stage) or a group of actions open at any stage; each
`Act` is one button or form it answers. `bot.core.workflow` dispatches clicks and submissions
through these declarations and draws the stage graph from their `leads_to`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

from bot.core import access
from bot.core.context import Ctx
from bot.core.transitions import refuse_if_done, require_open, require_stage, training
from bot.messages import Action, ActionId, Form, FormField, FormId
from storage.models import Case, RequestKind, Role, Stage


class Who(Enum):
    """Who may press a step's button or submit its form (re-checked at every action)."""

    owner = "owner"  # the case's officer, still an officer on the roster
    approver = "approver"  # the AOR's FRO or an active designee, never the requester
    owner_or_approver = "owner_or_approver"
    reminded = "reminded"  # whom a reminder was sent to: the reminder itself says who


@dataclass(frozen=True)
class FormInputs:
    """What a step's form may draw on besides the case: `automatic` lists indicators the core
    already set; with `webhook`, noticebot sends USNCB requests itself; `method` is how this
    officer sent requests before, `requested` the documents asked for, `received` the
    documents the USNCB sent (None: no answer came)."""

    form_id: FormId
    case: Case
    today: date
    ref: int | None = None
    automatic: tuple[str, ...] = ()
    webhook: bool = False
    method: str | None = None
    requested: tuple[str, ...] = ()
    received: tuple[str, ...] | None = None

    def form(self, title: str, section: str, fields: tuple[FormField, ...],
             intro: str = "") -> Form:
        return Form(self.form_id, title, fields, section=section, case_id=self.case.id,
                    ref=self.ref, intro=intro)


Run = Callable[[Ctx, Case, dict[str, Any], int | None], None]
Check = Callable[[Ctx, Case], None]
Prompt = Callable[[Ctx, Case], tuple[str, tuple[Action, ...]]]
Waiting = Callable[[Ctx, Case], bool]


@dataclass(frozen=True)
class Act:
    """One action of a step: the button `action` (and its `form`, if it asks one), who may take
    it at which `stages` (empty: any open stage), and the stages it `leads_to` (none: the case
    stays where it is). `before` runs ahead of the guard (a refusal that reads better first);
    `precondition` after who and before the stage; `use`: it leads to use of the notice, so
    the actor's training must be current (§5.3). `moves_from`: the stages `leads_to` starts
    from, when narrower than where the act is allowed. `request`: the form carries the text of a
    USNCB request of that kind."""

    action: ActionId
    who: Who
    run: Run
    stages: tuple[Stage, ...] = ()
    leads_to: tuple[Stage, ...] = ()
    form: FormId | None = None
    build: Callable[[FormInputs], Form] | None = None
    before: Check | None = None
    precondition: Check | None = None
    use: bool = False
    request: RequestKind | None = None
    moves_from: tuple[Stage, ...] = ()  # where `leads_to` starts, when narrower than `stages`


@dataclass(frozen=True)
class Line:
    """A step's line in the case's checklist: its number there ("2b") and the directive's
    sections it carries out. The line's title is the number and the stage's label."""

    number: str
    sections: str


@dataclass(frozen=True)
class Step:
    """One step: the stage it is the checklist line of (None: actions open at any stage), its
    line in the checklist (None: a stage past the checklist, such as ready), its prompt and
    whether it waits on someone else while at that stage, and its actions."""

    name: str
    acts: tuple[Act, ...]
    stage: Stage | None = None
    checklist: Line | None = None
    prompt: Prompt | None = None
    waiting: Waiting | None = None


TERMINAL = (Stage.closed,)
OPEN_STAGES = tuple(s for s in Stage if s not in TERMINAL)


def edges_of(act: Act) -> set[tuple[Stage, Stage]]:
    """The moves `act` declares: from where it starts to each stage it leads to."""
    sources = act.moves_from or act.stages or OPEN_STAGES
    return {(source, target) for source in sources for target in act.leads_to
            if source is not target}


def check_move(act: Act, case: Case, previous: str) -> None:
    """A step that moved a case along a transition it does not declare fails loudly (and the
    interaction rolls back) rather than leave the declared graph wrong."""
    if case.stage != previous and (Stage(previous), Stage(case.stage)) not in edges_of(act):
        raise AssertionError(f"{act.action.value} moved {case.id} from {previous} to "
                             f"{case.stage}, which its step does not declare")


def act_of(step: Step, action: ActionId) -> Act:
    return next(act for act in step.acts if act.action is action)


def never_waiting(ctx: Ctx, case: Case) -> bool:
    return False


def guard(ctx: Ctx, case: Case, act: Act) -> None:
    """Who may press what, at which stage. Roster membership is re-checked at every step
    (§5.3, §4.3): someone taken off the roster, or an officer who lost the officer role, can no
    longer act on a case, whatever they were allowed before."""
    if act.who is Who.reminded:
        return  # the reminder's own check (`reminders.followed_up`) says who
    access.require_person(ctx.session, ctx.actor)
    if act.who is Who.owner:
        access.require_owner(case, ctx.actor)
        access.require_role(ctx.session, ctx.actor, Role.officer)
    elif act.who is Who.approver:
        access.require_approver(ctx.session, case, ctx.actor, today=ctx.today)
    else:
        access.require_owner_or_approver(ctx.session, case, ctx.actor, today=ctx.today)
        if ctx.actor == case.officer:
            access.require_role(ctx.session, ctx.actor, Role.officer)
    if act.precondition is not None:
        act.precondition(ctx, case)
    if act.stages:
        if case.stage not in {s.value for s in act.stages}:
            refuse_if_done(ctx, case, act.stages)
        require_stage(case, *act.stages)
    else:
        require_open(case)
    if act.use:
        training(ctx, ctx.actor)  # §5.3: training current at each step that leads to use
