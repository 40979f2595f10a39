"""Step 2b (§5.2): doubt. At a minimum confer with partner agencies, research the person
and the offense, and seek context, never through the requesting country's NCB; then conclude:
no indications remain (on to approval), misuse, or doubt remains (the case closes)."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot.core import queries
from bot.core.buttons import button
from bot.core.context import Ctx
from bot.core.errors import FormErrors
from bot.core.forms import DOUBT_KINDS, DOUBT_PARTNERS, justification, options
from bot.core.steps.base import Act, FormInputs, Line, Step, Who, never_waiting
from bot.core.transitions import advance, close, complete, notify_do_not_use
from bot.messages import (
    Action,
    ActionId,
    FieldKind,
    Form,
    FormField,
    FormId,
    Option,
    ShownWhen,
    Style,
)
from storage.models import (
    Case,
    CloseReason,
    DoubtStep,
    ReviewOutcome,
    RiskAnswer,
    RiskReview,
    Stage,
)


def doubt_step(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    partners = list(values["partners"])
    if values["kind"] == "confer" and not partners:
        raise FormErrors({"partners": "name the partner agencies conferred with"})
    if "protected_country" in partners:
        latest = ctx.session.exec(
            select(RiskReview).where(RiskReview.case_id == case.id)
            .order_by(col(RiskReview.id).desc())
            .limit(1)
        ).first()
        answer = None if latest is None or latest.id is None else ctx.session.get(
            RiskAnswer, (latest.id, "protected_status"))
        if answer is None or not answer.answer:
            raise FormErrors({"partners": "confer with another country only if there is an "
                              "indication it granted the person protected status (§5.2(1))"})
    step = DoubtStep(case_id=case.id, kind=values["kind"], doubt_round=case.doubt_round,
                     partners=partners,
                     note=ctx.vault.seal(values["note"]), recorded_by=ctx.actor,
                     recorded_at=ctx.now)
    ctx.session.add(step)
    ctx.state("doubt.step", case_id=case.id, kind=values["kind"], partners=partners,
              doubt_round=case.doubt_round)


def doubt_resolve(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    resolution = values["resolution"]
    done = queries.doubt_done(ctx, case)  # this round's steps only
    missing = [DOUBT_KINDS[k] for k in DOUBT_KINDS if k not in done]
    if resolution == "resolved" and missing:
        raise FormErrors({"resolution": "§5.2 minimum not met; still to record: "
                          + "; ".join(missing)})
    ctx.state("doubt.resolved", case_id=case.id, resolution=resolution,
              justification=values["justification"])
    if resolution == "resolved":
        case.review_outcome = ReviewOutcome.no_indications
        complete(ctx, case, Stage.doubt, "Resolved: no indications remain")
        advance(ctx, case, Stage.approval)
    elif resolution == "misuse":
        case.review_outcome = ReviewOutcome.misuse
        complete(ctx, case, Stage.doubt, "Material evidence of misuse")
        close(ctx, case, CloseReason.misuse)
        notify_do_not_use(ctx, case, CloseReason.misuse)
    else:
        complete(ctx, case, Stage.doubt, "Doubt remains")
        close(ctx, case, CloseReason.doubt_unresolved)


def _step_form(given: FormInputs) -> Form:
    title, section = "Doubt: record what was done", "§5.2"
    intro = "Never contact the requesting country's NCB or ask it for documents while " \
            "indications exist (§5.2)."
    fields = (
        FormField("kind", "What was done", FieldKind.choice, options=options(DOUBT_KINDS)),
        FormField("partners", "Partners conferred with", FieldKind.multi_choice,
                  options=options(DOUBT_PARTNERS), when=ShownWhen("kind", ("confer",)),
                  required_message="name the partner agencies conferred with"),
        FormField("note", "What was learned", FieldKind.long_text, max_length=2000),
    )
    return given.form(title, section, fields, intro)


def _resolve_form(given: FormInputs) -> Form:
    intro = ""
    title, section = "Resolve the doubt", "§5.2"
    fields = (
        FormField("resolution", "Conclusion", FieldKind.choice, options=(
            Option("resolved", "No indications remain: seek approval"),
            Option("misuse", "Material evidence of misuse: do not use"),
            Option("unresolved", "Doubt remains: do not use"),
        )),
        justification("justification", "Basis for the conclusion",
                      "what the conferring, research and context showed"),
    )
    return given.form(title, section, fields, intro)


def prompt(ctx: Ctx, case: Case) -> tuple[str, tuple[Action, ...]]:
    done = queries.doubt_done(ctx, case)
    missing = [k for k in ("confer", "research", "context") if k not in done]
    status = "All three done." if not missing else f"Still to do: {', '.join(missing)}."
    return (
        "There is doubt. At a minimum confer with partner agencies (USNCB, State, DOJ, a "
        "country that may have granted protected status), research the person and offense, "
        "and seek context. Do NOT contact the requesting country's NCB or ask it for "
        f"documents while indications exist. {status}",
        (
            button("Record what was done", ActionId.doubt_step, case),
            button("Conclude", ActionId.doubt_resolve, case, style=Style.primary),
        ),
    )


STEP = Step(
    name="Doubt",
    stage=Stage.doubt,
    checklist=Line("2b", "§5.2"),
    prompt=prompt,
    waiting=never_waiting,
    acts=(
        Act(ActionId.doubt_step, Who.owner, doubt_step, stages=(Stage.doubt,),
            form=FormId.doubt_step, build=_step_form),
        Act(ActionId.doubt_resolve, Who.owner, doubt_resolve, stages=(Stage.doubt,),
            leads_to=(Stage.approval, Stage.closed), form=FormId.doubt_resolve,
            build=_resolve_form),
    ),
)
