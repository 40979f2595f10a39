"""Step 7 (§5.1(7), §4.3(6)): acknowledge that a notice is not a U.S. arrest warrant and how
an arrest is documented; then the threshold criteria are met."""

from __future__ import annotations

from typing import Any

from bot.core.buttons import button
from bot.core.context import Ctx
from bot.core.errors import FormErrors
from bot.core.forms import YES_NO
from bot.core.steps.base import Act, FormInputs, Line, Step, Who, never_waiting
from bot.core.transitions import complete, resume_after, resumes, training
from bot.messages import Action, ActionId, FieldKind, Form, FormField, FormId, Style
from storage.models import Case, Stage


def representations(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    errors = {n: "must be acknowledged (yes)" for n in ("not_a_warrant", "i213") if not values[n]}
    if errors:
        raise FormErrors(errors)
    training(ctx, ctx.actor)  # §5.3: training current at the moment of use
    complete(ctx, case, Stage.representations,
             "Acknowledged: not a U.S. arrest warrant; I-213 notes 'foreign fugitive'")
    resume_after(ctx, case, Stage.representations)


def _form(given: FormInputs) -> Form:
    title, section = "Representations and records", "§5.1(7), §4.3(6)"
    intro = "A notice is not a U.S. arrest warrant and conveys no authority to arrest, " \
            "detain or remove. On Form I-213, note the person is a 'foreign fugitive'; do " \
            "not cite the notice."
    fields = (
        FormField("not_a_warrant", "I will not represent the notice as a U.S. arrest "
                  "warrant, independent authority, or INTERPOL's judgment of probable cause",
                  FieldKind.yes_no, options=YES_NO),
        FormField("i213", "Any arrest is documented on its immigration grounds; the I-213 "
                  "says 'foreign fugitive' and does not cite the notice", FieldKind.yes_no,
                  options=YES_NO),
    )
    return given.form(title, section, fields, intro)


def prompt(ctx: Ctx, case: Case) -> tuple[str, tuple[Action, ...]]:
    return (
        "A notice is not a U.S. arrest warrant and conveys no authority. Document any "
        "arrest on its immigration grounds; on Form I-213 note 'foreign fugitive' and do "
        "not cite the notice.",
        (button("Acknowledge and finish", ActionId.representations, case,
                style=Style.primary),),
    )


STEP = Step(
    name="Representations and records",
    stage=Stage.representations,
    checklist=Line("7", "§5.1(7), §4.3(6)"),
    prompt=prompt,
    waiting=never_waiting,
    acts=(
        Act(ActionId.representations, Who.owner, representations,
            stages=(Stage.representations,), leads_to=resumes(Stage.representations), use=True,
            form=FormId.representations, build=_form),
    ),
)
