"""The end (§6): the threshold criteria are met; the officer records how the notice was used
(or that it was not), or the approver closes a case whose officer did not. The case closes."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.core import labels, queries, reminders
from bot.core.context import Ctx
from bot.core.errors import FormErrors
from bot.core.forms import USE_OUTCOMES, date_field, justification, options
from bot.core.steps.base import Act, FormInputs, Step, Who
from bot.core.transitions import close, not_future
from bot.messages import ActionId, FieldKind, Form, FormField, FormId
from storage.models import Case, CloseReason, IntendedUse, ReminderKind, Stage, UseOutcome


def _check_outcome(ctx: Ctx, case: Case, outcome: UseOutcome) -> None:
    """The outcome must be a use the case was cleared for (§5.1(5))."""
    use = IntendedUse(case.intended_use)
    label = labels.USE_LABELS[use]
    if outcome is UseOutcome.immigration_proceedings:
        granted = queries.covering_use_request(ctx, case)
        if use is IntendedUse.enforcement or granted is None or granted.answer != "granted":
            raise FormErrors({"outcome": f"the case was cleared for {label}: a notice is "
                              "introduced in immigration proceedings only with a granted use "
                              "authorization (§5.1(5)); change the intended use first"})
    if outcome is UseOutcome.enforcement_action and use is IntendedUse.immigration:
        raise FormErrors({"outcome": f"the case was cleared for {label}; change the intended "
                          "use first (an approver decides)"})


def _end(ctx: Ctx, case: Case, outcome: UseOutcome, used_on: date | None) -> None:
    case.use_outcome, case.used_on = outcome, used_on
    reminders.stop(ctx, ReminderKind.ready_outcome, case.id)
    close(ctx, case, CloseReason.completed)


def record_outcome(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    not_future(values, "used_on", today=ctx.today)
    outcome = UseOutcome(values["outcome"])
    _check_outcome(ctx, case, outcome)
    ctx.state("case.use_recorded", case_id=case.id, outcome=outcome.value,
              used_on=values["used_on"], note=values.get("note"))
    _end(ctx, case, outcome, values["used_on"])


def close_case(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    """The FRO (or a designee) closes a ready case whose officer did not record its use."""
    not_future(values, "used_on", today=ctx.today)
    outcome = UseOutcome(values["outcome"])
    _check_outcome(ctx, case, outcome)
    ctx.state("case.use_recorded", case_id=case.id, outcome=outcome.value,
              used_on=values.get("used_on"), reason=values["reason"], by_approver=True)
    _end(ctx, case, outcome, values.get("used_on"))


def _form(given: FormInputs) -> Form:
    closing = given.form_id is FormId.close_case
    title, section = ("Close the case" if closing else "How the notice was used"), "§6"
    intro = "The case closes; its retention period counts from today."
    fields = (
        FormField("outcome", "Outcome", FieldKind.choice, options=options(USE_OUTCOMES)),
        date_field("used_on", "Date of the use (or of the decision not to use it)",
                    today=given.today, required=not closing),
        justification("reason", "Why you close it",
                      "why the case closes without the officer's outcome")
        if closing else FormField("note", "Note", FieldKind.long_text, required=False,
                                  max_length=2000),
    )
    return given.form(title, section, fields, intro)


STEP = Step(
    name="Ready for use",
    stage=Stage.ready,
    acts=(
        Act(ActionId.record_outcome, Who.owner, record_outcome, stages=(Stage.ready,),
            leads_to=(Stage.closed,), form=FormId.record_outcome, build=_form),
        Act(ActionId.close_case, Who.approver, close_case, stages=(Stage.ready,),
            leads_to=(Stage.closed,), form=FormId.close_case, build=_form),
    ),
)
