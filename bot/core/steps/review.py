"""Step 2 (§5.1(2), §5.2, §2.3): the preliminary review for signs the notice is prohibited
or non-compliant. No indications: on to approval; doubt: the §5.2 minimum; misuse or a
prohibited category: the case closes and the offices are told not to use it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from bot.core.buttons import button
from bot.core.context import Ctx
from bot.core.details import open_case_details
from bot.core.errors import FormErrors
from bot.core.forms import (
    AUTOMATIC_INDICATORS,
    PROHIBITED_CATEGORIES,
    REQUESTING_NCB,
    REQUIRED_SOURCES,
    REVIEW_OUTCOMES,
    REVIEW_SOURCES,
    RISK_INDICATORS,
    YES_NO,
    as_list,
    justification,
    options,
)
from bot.core.steps.base import Act, FormInputs, Line, Step, Who, never_waiting
from bot.core.steps.usncb import refuse_requesting_ncb
from bot.core.transitions import advance, close, complete, notify_do_not_use
from bot.messages import (
    Action,
    ActionId,
    ChosenIn,
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
    NoticeType,
    ReviewOutcome,
    RiskAnswer,
    RiskReview,
    Stage,
)


def automatic_indicators(ctx: Ctx, case: Case) -> tuple[str, ...]:
    found = []
    if case.notice_type == NoticeType.diffusion:
        found.append("diffusion")
    cutoff = date.fromisoformat(ctx.settings.reform_cutoff)
    if case.published_on is not None and case.published_on < cutoff:
        found.append("pre_reform")
    if open_case_details(ctx.vault, case).issuing_country in ctx.settings.watchlist_countries:
        found.append("watchlist")
    return tuple(found)


def preliminary_review(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    errors: dict[str, str] = {}
    sources = set(values["sources"])
    missing = [REVIEW_SOURCES[s] for s in REQUIRED_SOURCES if s not in sources]
    if missing:
        errors["sources"] = f"§2.3 and §4.3(7) require reviewing: {'; '.join(missing)}"
    auto = automatic_indicators(ctx, case)
    present = set(auto) | set(values["indicators"])
    dismissed = set(values["dismissed"])
    if dismissed - present:
        errors["dismissed"] = "only indicators that are present can be dismissed"
    if dismissed and not values.get("dismissal_note"):
        errors["dismissal_note"] = "explain why the dismissed indicators do not apply"
    prohibited = list(values["prohibited"])
    exception = bool(values.get("serious_crime"))
    effective_prohibited = [
        p for p in prohibited if not (p == "administrative_private" and exception)
    ]
    outcome = ReviewOutcome(values["outcome"])
    open_indicators = sorted(present - dismissed)
    if effective_prohibited and outcome is not ReviewOutcome.misuse:
        errors["outcome"] = ("a prohibited offense category (§5.2) means the notice must not be "
                             "used: choose material evidence of misuse")
    elif open_indicators and outcome is ReviewOutcome.no_indications:
        names = "; ".join(RISK_INDICATORS[k] for k in open_indicators)
        errors["outcome"] = (f"risk indicators are present ({names}): choose doubt, or dismiss "
                             "each with a reason")
    if errors:
        raise FormErrors(errors)
    review = RiskReview(
        case_id=case.id, reviewed_by=ctx.actor, reviewed_at=ctx.now, outcome=outcome,
        prohibited_categories=prohibited, serious_crime_exception=exception,
        sources=sorted(sources), notes=ctx.vault.seal(values.get("notes") or ""),
    )
    ctx.session.add(review)
    ctx.session.flush()
    assert review.id is not None
    for key in RISK_INDICATORS:
        ctx.session.add(RiskAnswer(
            review_id=review.id, indicator=key, answer=key in present,
            automatic=key in auto and key in AUTOMATIC_INDICATORS,
            not_applicable_note=ctx.vault.seal(values.get("dismissal_note") or "")
            if key in dismissed else "",
        ))
    case.review_outcome = outcome
    ctx.state("review.recorded", case_id=case.id, review_id=review.id, outcome=outcome.value,
              indicators=sorted(present), dismissed=sorted(dismissed), prohibited=prohibited)
    labels = {
        ReviewOutcome.no_indications: "No indications of misuse",
        ReviewOutcome.doubt: f"Doubt ({len(open_indicators)} indicator(s) to look into)",
        ReviewOutcome.misuse: "Material evidence of misuse or a prohibited notice",
    }
    complete(ctx, case, Stage.review, labels[outcome])
    if outcome is ReviewOutcome.no_indications:
        advance(ctx, case, Stage.approval)
    elif outcome is ReviewOutcome.doubt:
        advance(ctx, case, Stage.doubt)
    else:
        reason = CloseReason.prohibited if effective_prohibited else CloseReason.misuse
        close(ctx, case, reason)
        notify_do_not_use(ctx, case, reason)


def screen(ctx: Ctx, case: Case, raw: Mapping[str, object]) -> None:
    """Checks on raw input that refuse (and are recorded as refusals) instead of being
    reported as a field error: a crafted request to contact the requesting country's NCB."""
    if REQUESTING_NCB in as_list(raw.get("partners")):
        refuse_requesting_ncb(ctx, case)


def _review_form(given: FormInputs) -> Form:
    title, section = "Preliminary review", "§5.1(2), §5.2"
    auto = ", ".join(RISK_INDICATORS[k] for k in given.automatic) or "none"
    intro = f"Indicators set from the case: {auto}."
    manual = [k for k in RISK_INDICATORS if k not in AUTOMATIC_INDICATORS]
    # Asked only when some indicator is present: set automatically, or answered above.
    any_present = None if given.automatic else ShownWhen("indicators", tuple(manual))
    fields = (
        FormField("prohibited", "Prohibited offense categories that apply (§5.2)",
                  FieldKind.multi_choice, required=False,
                  options=tuple(Option(o.value, o.label, "ABC"[i]) for i, o in
                                enumerate(options(PROHIBITED_CATEGORIES)))),
        FormField("serious_crime", "The administrative violation or private dispute: is it "
                  "aimed at a serious crime or connected to organized crime?",
                  FieldKind.yes_no, options=YES_NO,
                  when=ShownWhen("prohibited", ("administrative_private",))),
        FormField("indicators", "Risk indicators present", FieldKind.multi_choice,
                  required=False, options=options(RISK_INDICATORS, only=manual)),
        FormField("dismissed", "Indicators that do not apply to this case despite being "
                  "present", FieldKind.multi_choice, required=False,
                  options=options(RISK_INDICATORS), when=any_present,
                  chosen_in=ChosenIn("indicators", given.automatic)),
        justification("dismissal_note", "Why those indicators do not apply",
                      "why each indicator marked as not applying does not apply here",
                      when=ShownWhen("dismissed", tuple(RISK_INDICATORS))),
        FormField("sources", "Sources reviewed (§2.3, §4.3(7))", FieldKind.multi_choice,
                  options=options(REVIEW_SOURCES)),
        FormField("outcome", "Outcome", FieldKind.choice, options=REVIEW_OUTCOMES),
        FormField("notes", "Review notes", FieldKind.long_text, required=False,
                  max_length=2000),
    )
    return given.form(title, section, fields, intro)


def prompt(ctx: Ctx, case: Case) -> tuple[str, tuple[Action, ...]]:
    return (
        "Review the notice for signs it is prohibited or non-compliant: offense categories, "
        "the risk indicators, INTERPOL guidance, law-enforcement systems, U.S. Government "
        "reports and public information.",
        (button("Record preliminary review", ActionId.review, case, style=Style.primary),),
    )


STEP = Step(
    name="Preliminary review",
    stage=Stage.review,
    checklist=Line("2", "§5.1(2), §5.2, §2.3"),
    prompt=prompt,
    waiting=never_waiting,
    acts=(
        Act(ActionId.review, Who.owner, preliminary_review, stages=(Stage.review,),
            leads_to=(Stage.approval, Stage.doubt, Stage.closed), form=FormId.review,
            build=_review_form),
    ),
)
