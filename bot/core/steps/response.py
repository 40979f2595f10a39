"""Step 6b (§5.1(6), §4.3(8)): the case waits for the person's response until the respond-by
date. 'No response' only after it; a contest that raises indications of misuse sends the case
back to the preliminary review."""

from __future__ import annotations

from typing import Any

from bot.core import reminders
from bot.core.buttons import button
from bot.core.context import Ctx
from bot.core.errors import FormErrors
from bot.core.forms import PERSON_RESPONSES, YES_NO, options
from bot.core.steps.base import Act, FormInputs, Line, Step, Who
from bot.core.transitions import complete, resume_after, resumes, send_back
from bot.messages import Action, ActionId, FieldKind, Form, FormField, FormId, ShownWhen, Style
from storage.models import Case, PersonResponse, ReminderKind, Stage


def person_response(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    """What came of the person's opportunity to respond. 'None' only once the window closed;
    a contest needs a note, and one raising indications sends the case back to review."""
    response = PersonResponse(values["response"])
    errors: dict[str, str] = {}
    if response is PersonResponse.none and case.respond_by and ctx.today <= case.respond_by:
        errors["response"] = (f"the person may respond until {case.respond_by.isoformat()}; "
                              "record 'no response' after that date (§5.1(6))")
    if response is PersonResponse.contested:
        if not values.get("note"):
            errors["note"] = "say what the person contests"
        if values.get("indications") is None:
            errors["indications"] = "say whether the contest raises indications of misuse"
    if errors:
        raise FormErrors(errors)
    raises = response is PersonResponse.contested and bool(values.get("indications"))
    ctx.state("disclosure.response", case_id=case.id, response=response.value,
              note=values.get("note"), indications=raises, respond_by=case.respond_by)
    reminders.stop(ctx, ReminderKind.response_window, case.id)
    if raises:
        send_back(ctx, case, Stage.awaiting_response, to=Stage.review,
                  why=f"Contested ({ctx.today.isoformat()}); indications raised: back to the "
                  "preliminary review")
        return
    labels = {PersonResponse.none: f"No response by {case.respond_by}",
              PersonResponse.not_contested: "The person responded without contesting",
              PersonResponse.contested: "Contested; no indications of misuse raised"}
    complete(ctx, case, Stage.awaiting_response,
             f"{labels[response]} (recorded {ctx.today.isoformat()})")
    resume_after(ctx, case, Stage.awaiting_response)


def _response_form(given: FormInputs) -> Form:
    title, section = "The person's response", "§5.1(6), §4.3(8)"
    case = given.case
    respond_by = case.respond_by.isoformat() if case.respond_by else "the respond-by date"
    intro = f"The person may respond or contest until {respond_by}."
    fields = (
        FormField("response", "Response", FieldKind.choice,
                  options=options(PERSON_RESPONSES)),
        FormField("note", "What the person contests", FieldKind.long_text,
                  max_length=2000, when=ShownWhen("response", (PersonResponse.contested,)),
                  required_message="say what the person contests"),
        FormField("indications", "Does the contest raise indications of misuse or "
                  "non-compliance?", FieldKind.yes_no, options=YES_NO,
                  when=ShownWhen("response", (PersonResponse.contested,)),
                  required_message="say whether the contest raises indications of misuse"),
    )
    return given.form(title, section, fields, intro)


def prompt(ctx: Ctx, case: Case) -> tuple[str, tuple[Action, ...]]:
    respond_by = case.respond_by.isoformat() if case.respond_by else "the respond-by date"
    return (
        f"The person may respond or contest until {respond_by}. The case waits until then, "
        "unless the person's response is recorded earlier; a contest that raises "
        "indications sends the case back to the preliminary review.",
        (button("Record the person's response", ActionId.person_response, case,
                style=Style.primary),),
    )


def waiting(ctx: Ctx, case: Case) -> bool:
    """Waiting on the person, until the respond-by date."""
    return case.respond_by is not None and ctx.today <= case.respond_by


STEP = Step(
    name="Waiting for the person's response",
    stage=Stage.awaiting_response,
    checklist=Line("6b", "§5.1(6), §4.3(8)"),
    prompt=prompt,
    waiting=waiting,
    acts=(
        Act(ActionId.person_response, Who.owner, person_response,
            stages=(Stage.awaiting_response,),
            leads_to=(Stage.review, *resumes(Stage.awaiting_response)), use=True,
            form=FormId.person_response, build=_response_form),
    ),
)
