"""The case's messages: a root in the channel and one prompt per step in its thread.

Messages are derived from the case's stored state, so the thread always reads as the case's
history: a done step shows its outcome without buttons, the current step carries its buttons.
Only channel-safe facts are used here: ids, enum labels, dates and people. Never subject details
or officers' free text (§4.3(9)).
"""

from __future__ import annotations

from bot.core import queries
from bot.core.buttons import button, titled, withdraw_confirm
from bot.core.context import Ctx
from bot.core.labels import (
    ADVERSE_OUTCOMES,
    CLOSE_LABELS,
    DECISION_STEPS,
    OUTCOME_LABELS,
    STAGE_LABELS,
    TYPE_LABELS,
    USE_LABELS,
)
from bot.core.workflow import checklist, step_at
from bot.messages import (
    Action,
    ActionId,
    ActionValue,
    DestinationKind,
    Mark,
    Message,
    Style,
    mention,
)
from storage.models import Case, ChecklistItem, CloseReason, NoticeType, Stage


def step_key(case_id: str, stage: Stage | str) -> str:
    return f"{case_id}:{stage}"


def root_message(case: Case) -> Message:
    stage = STAGE_LABELS.get(case.stage, case.stage)
    if case.stage == Stage.closed and case.close_reason:
        stage = f"Closed: {CLOSE_LABELS.get(case.close_reason, case.close_reason)}"
    actions: tuple[Action, ...] = (button("Show details", ActionId.show_case, case),)
    if case.stage != Stage.closed:
        actions += (button("Report notice inactive", ActionId.report_inactive, case),)
        if case.stage != Stage.validity:  # once the notice is known to be active
            actions += (button("Change intended use", ActionId.change_use, case),)
        actions += (Action("Withdraw case", ActionValue(ActionId.withdraw, case.id), Style.danger,
                           withdraw_confirm(case)),)
    return Message(
        title=f"{case.id} · {TYPE_LABELS.get(NoticeType(case.notice_type), case.notice_type)}",
        text="INTERPOL notice case. The checklist of ICE Directive 15006.1 runs in this thread.",
        fields=(
            ("Case", case.id),
            ("AOR", case.aor_id),
            ("Stage", stage),
            ("Officer", f"{mention(case.officer)}"),
        ),
        actions=actions,
        key=step_key(case.id, "root"),
    )


def done_text(stage: str, item: ChecklistItem) -> str:
    """A done step's line. A decision is credited to whoever made it; every other outcome
    (the USNCB's answer, the person's time to respond) to the one who recorded it."""
    outcome = item.outcome or "Done"
    if not item.done_by:
        return f"{outcome}."
    if f"{mention(item.done_by)}" in outcome:  # the outcome already names who
        return f"{outcome}."
    when = f" on {item.done_at.date().isoformat()}" if item.done_at else ""
    if stage in DECISION_STEPS:
        return f"{outcome} by {mention(item.done_by)}."
    return f"{outcome}. Recorded by {mention(item.done_by)}{when}."


def current_step(ctx: Ctx, case: Case) -> Message | None:
    """The message of the step the case is at, with its buttons; None when it has none."""
    for stage, title, section in checklist():
        if case.stage == stage.value:
            step = step_at(stage)
            if step is None or step.prompt is None:
                return None
            text, actions = step.prompt(ctx, case)
            waiting = step.waiting is not None and step.waiting(ctx, case)
            mark = Mark.waiting if waiting else Mark.current
            return Message(title=titled(mark, title), text=text, section=section,
                           actions=actions, key=step_key(case.id, stage), mark=mark)
    return None


def step_messages(ctx: Ctx, case: Case) -> list[Message]:
    items = queries.checklist(ctx, case.id)
    messages: list[Message] = []
    for stage, title, section in checklist():
        item = items.get(stage.value)
        key = step_key(case.id, stage)
        if item is not None and item.done:
            adverse = (item.outcome or "").startswith(ADVERSE_OUTCOMES)
            mark = Mark.adverse if adverse else Mark.good
            messages.append(Message(
                title=titled(mark, title), text=done_text(stage.value, item), section=section,
                key=key, mark=mark,
            ))
        elif case.stage == stage.value:
            current = current_step(ctx, case)
            assert current is not None
            messages.append(current)
        elif item is not None and case.stage == Stage.closed:
            messages.append(Message(title=titled(Mark.skipped, title), text="Not completed: "
                                    "the case is closed.", section=section, key=key,
                                    mark=Mark.skipped))
        elif item is not None and item.outcome:  # sent back: why this step waits
            messages.append(Message(title=titled(Mark.reopened, title), text=f"{item.outcome}.",
                                    section=section, key=key, mark=Mark.reopened))
    if case.stage == Stage.ready:
        messages.append(Message(
            mark=Mark.good,
            title="✅ Threshold criteria met",
            text="All steps of §5.1 are recorded. The notice may inform the intended use, "
            "never as its sole basis (§2)."
            + (" Prioritize the underlying documentation: it is better evidence (§5.1(4))."
               if case.documents_preferred else "")
            + f" Cleared for {USE_LABELS[case.intended_use]}. When the notice has been used, or "
            "will not be, record how: the case then closes.",
            section="§2, §5.1, §6",
            actions=(button("Record how the notice was used", ActionId.record_outcome, case,
                            style=Style.primary),),
            key=step_key(case.id, "final"),
        ))
    if case.stage == Stage.closed and case.close_reason:
        text = CLOSE_LABELS.get(case.close_reason, case.close_reason).capitalize() + "."
        if case.close_reason == CloseReason.completed and case.use_outcome:
            text = (f"Use recorded: {OUTCOME_LABELS[case.use_outcome]}"
                    + (f" ({case.used_on.isoformat()})" if case.used_on else "") + ".")
        # Withdrawn by the officer is an ending, not a finding against the notice; a recorded
        # use is the case's good end.
        mark = (Mark.skipped if case.close_reason == CloseReason.withdrawn
                else Mark.good if case.close_reason == CloseReason.completed else Mark.adverse)
        messages.append(Message(
            mark=mark,
            title=titled(mark, "Case closed"),
            text=text,
            section="§5.1, §5.2",
            key=step_key(case.id, "final"),
        ))
    return messages


def sync(ctx: Ctx, case: Case) -> None:
    """Queue the root and thread messages whose content changed since they were last queued."""
    ctx.send(DestinationKind.channel, case.channel, root_message(case), case_id=case.id)
    for message in step_messages(ctx, case):
        ctx.send(DestinationKind.thread, case.id, message, case_id=case.id)
