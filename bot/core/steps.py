"""The directive's steps as state transitions. Each function checks the actor and the case's
state, changes it, and records what it did; callers hold the transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select, update

from bot.core import access, inbound, reminders, thread
from bot.core.context import Ctx
from bot.core.details import open_case_details, seal_case
from bot.core.errors import FormErrors, Refused
from bot.core.forms import (
    AUTOMATIC_INDICATORS,
    DOUBT_KINDS,
    REQUESTING_NCB,
    REQUIRED_SOURCES,
    REVIEW_SOURCES,
    RISK_INDICATORS,
    as_list,
    check_country,
)
from bot.messages import (
    Action,
    ActionId,
    ActionValue,
    DestinationKind,
    Message,
    mention,
)
from config.settings import UsncbChannelKind
from storage.models import (
    Aor,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseCounter,
    CaseCreate,
    ChecklistItem,
    CloseReason,
    Contact,
    Delivery,
    DoubtStep,
    IntendedUse,
    NoticeType,
    Person,
    PersonResponse,
    PersonRole,
    ReminderKind,
    RequestKind,
    RequestStatus,
    ReviewOutcome,
    RiskAnswer,
    RiskReview,
    Role,
    Stage,
    UseOutcome,
    UsncbNoResponse,
    UsncbRequest,
)

CASE_PREFIX = {NoticeType.red_notice: "RN", NoticeType.diffusion: "WD"}
USNCB_ACTOR = "usncb:liaison"  # the actor of answers that arrive by signed callback


# --- helpers -------------------------------------------------------------------------------


def load_case(ctx: Ctx, case_id: str | None, *, lock: bool = True) -> Case:
    """The case, row-locked on PostgreSQL so that concurrent transitions serialize."""
    if not case_id:
        raise Refused("No case given.", code="no_case")
    case = ctx.session.get(Case, case_id.strip().upper(), with_for_update=lock)
    if case is None:
        raise Refused(f"There is no case {case_id}.", code="no_case")
    return case


def require_stage(case: Case, *stages: Stage) -> None:
    if case.stage not in {s.value for s in stages}:
        if case.stage == Stage.closed:
            raise Refused(f"{case.id} is closed.", code="closed")
        wanted = " or ".join(thread.STAGE_LABELS[s.value] for s in stages)
        raise Refused(
            f"{case.id} is at '{thread.STAGE_LABELS.get(case.stage, case.stage)}'; this step "
            f"needs '{wanted}' first.",
            code="stage",
        )


def refuse_if_done(ctx: Ctx, case: Case, stages: tuple[Stage, ...]) -> None:
    """A button of a step that is finished: say it is done, by whom and when, rather than
    that it 'needs' a step the case is long past."""
    for stage in stages:
        item = ctx.session.get(ChecklistItem, (case.id, stage.value))
        if item is not None and item.done:
            when = f" on {item.done_at.date().isoformat()}" if item.done_at else ""
            by = f" by {mention(item.done_by)}" if item.done_by else ""
            raise Refused(
                f"{case.id}: '{thread.STAGE_LABELS[stage.value]}' is already done "
                f"({item.outcome or 'done'}), recorded{by}{when}.",
                code="already_done",
            )


def require_open(case: Case) -> None:
    if case.stage == Stage.closed:
        raise Refused(f"{case.id} is closed.", code="closed")


def complete(ctx: Ctx, case: Case, stage: Stage, outcome: str) -> None:
    item = ctx.session.get(ChecklistItem, (case.id, stage.value))
    if item is None:
        item = ChecklistItem(case_id=case.id, step=stage.value)
    item.done, item.outcome, item.done_by, item.done_at = True, outcome, ctx.actor, ctx.now
    ctx.session.add(item)
    ctx.state("step.completed", case_id=case.id, step=stage.value, outcome=outcome)


def advance(ctx: Ctx, case: Case, stage: Stage) -> None:
    previous = case.stage
    case.stage = stage
    if stage is Stage.doubt:
        case.doubt_round += 1  # §5.2: each round of doubt needs its own confer/research/context
    ctx.session.add(case)
    if stage not in (Stage.ready, Stage.closed):
        item = ctx.session.get(ChecklistItem, (case.id, stage.value))
        if item is None:
            ctx.session.add(ChecklistItem(case_id=case.id, step=stage.value))
        elif item.done or item.outcome:
            reopen(ctx, item)  # a stage entered again is done again, for the new facts
    ctx.state("case.stage", case_id=case.id, previous=previous, stage=stage.value,
              doubt_round=case.doubt_round if stage is Stage.doubt else None)


def reopen(ctx: Ctx, item: ChecklistItem) -> None:
    item.done, item.outcome, item.done_by, item.done_at = False, None, None, None
    ctx.session.add(item)


# The steps after supervisory approval, in order: a case sent back resumes at the first one
# not done (a contest sent back to review resumes at the person's response, not the documents).
AFTER_APPROVAL = (Stage.documents, Stage.use_authorization, Stage.disclosure,
                  Stage.awaiting_response, Stage.representations)


def resume_after(ctx: Ctx, case: Case, stage: Stage) -> None:
    following = AFTER_APPROVAL[AFTER_APPROVAL.index(stage) + 1:] if stage in AFTER_APPROVAL \
        else AFTER_APPROVAL
    for candidate in following:
        if candidate is Stage.awaiting_response and case.respond_by is None:
            continue  # the footnote 2 exception: nothing was disclosed, no window to wait for
        item = ctx.session.get(ChecklistItem, (case.id, candidate.value))
        if item is None or not item.done:
            advance(ctx, case, candidate)
            return
    advance(ctx, case, Stage.ready)
    on_ready(ctx, case)


def close(ctx: Ctx, case: Case, reason: CloseReason) -> None:
    previous = case.stage
    case.stage, case.close_reason, case.closed_at = Stage.closed, reason, ctx.now
    ctx.session.add(case)
    ctx.session.execute(
        update(Approval)
        .where(col(Approval.case_id) == case.id, col(Approval.status) == ApprovalStatus.pending)
        .values(status=ApprovalStatus.cancelled, decided_at=ctx.now)
    )
    reminders.stop_case(ctx, case.id)
    ctx.state("case.closed", case_id=case.id, previous=previous, reason=reason.value)


def _people_with_role(ctx: Ctx, role: Role) -> list[str]:
    return list(
        ctx.session.exec(
            select(PersonRole.user_id)
            .join(Person, col(Person.user_id) == col(PersonRole.user_id))
            .where(PersonRole.role == role.value, col(Person.active).is_(True))
            .order_by(col(PersonRole.user_id))
        ).all()
    )


def notify_do_not_use(ctx: Ctx, case: Case, reason: CloseReason) -> None:
    """§5.2: notify OPLA, the USNCB, USCIS and other configured offices, by case id only."""
    message = Message(
        title=f"{case.id}: notice must not be used",
        text=f"{thread.CLOSE_LABELS[reason].capitalize()}. Case {case.id} (AOR {case.aor_id}) "
        "was closed under ICE Directive 15006.1 §5.2. Authorized staff can open the case for "
        "details.",
        section="§5.2",
        actions=(Action("Show details", ActionValue(ActionId.show_case, case.id)),),
    )
    for user_id in _people_with_role(ctx, Role.opla):
        ctx.send(DestinationKind.dm, user_id, message, case_id=case.id)
    contacts = ctx.session.exec(
        select(Contact).where(col(Contact.active).is_(True)).order_by(col(Contact.id))
    ).all()
    for contact in contacts:
        ctx.send(DestinationKind.channel, contact.channel, message, case_id=case.id)
    ctx.state("case.notified", case_id=case.id, reason=reason.value,
              opla=_people_with_role(ctx, Role.opla), contacts=[c.id for c in contacts])


def _training(ctx: Ctx, user_id: str) -> None:
    access.require_training(
        ctx.session, user_id, today=ctx.today, validity_days=ctx.settings.training_validity_days
    )


def _not_future(values: dict[str, Any], *names: str, today: date) -> None:
    errors = {n: "cannot be in the future" for n in names if values.get(n) and values[n] > today}
    if errors:
        raise FormErrors(errors)


# --- who may do what, when: one table for clicks (before a form opens) and submits ----------


@dataclass(frozen=True)
class Guard:
    who: str  # owner | approver | owner_or_approver
    stages: tuple[Stage, ...] = ()  # empty: any open stage
    precondition: Callable[[Ctx, Case], None] | None = None
    use: bool = False  # the step leads to use of the notice: the officer's training must be current


def guard(ctx: Ctx, case: Case, action: ActionId) -> None:
    """Who may press what, at which stage. Roster membership is re-checked at every step
    (§5.3, §4.3): someone taken off the roster, or an officer who lost the officer role, can no
    longer act on a case, whatever they were allowed before."""
    rule = GUARDS[action]
    access.require_person(ctx.session, ctx.actor)
    if rule.who == "owner":
        access.require_owner(case, ctx.actor)
        access.require_role(ctx.session, ctx.actor, Role.officer)
    elif rule.who == "approver":
        access.require_approver(ctx.session, case, ctx.actor, today=ctx.today)
    else:
        access.require_owner_or_approver(ctx.session, case, ctx.actor, today=ctx.today)
        if ctx.actor == case.officer:
            access.require_role(ctx.session, ctx.actor, Role.officer)
    if rule.precondition is not None:
        rule.precondition(ctx, case)
    if rule.stages:
        if case.stage not in {s.value for s in rule.stages}:
            refuse_if_done(ctx, case, rule.stages)
        require_stage(case, *rule.stages)
    else:
        require_open(case)
    if rule.use:
        _training(ctx, ctx.actor)  # §5.3: training current at each step that leads to use


def reassign(ctx: Ctx, case: Case, new_officer: str) -> None:
    """§5.3, §4.3: a case whose officer left the roster (or lost the officer role) is handed by
    the AOR's FRO or designee to another officer of the AOR with current training; the new
    officer is told. Until then the managers' digest flags the case."""
    access.require_person(ctx.session, ctx.actor)
    access.require_approver(ctx.session, case, ctx.actor, today=ctx.today)
    require_open(case)
    if access.officer_present(ctx.session, case):
        raise Refused(f"{mention(case.officer)} is still an officer on the roster: only a "
                      f"case whose "
                      "officer left it is reassigned.", code="officer_active")
    target = access.person(ctx.session, new_officer)
    if target is None:
        raise Refused(f"{mention(new_officer)} is not on the roster.", code="not_on_roster")
    if Role.officer.value not in access.roles_of(ctx.session, new_officer):
        raise Refused(f"{mention(new_officer)} does not have the officer role.", code="role")
    if target.aor_id != case.aor_id:
        raise Refused(f"{mention(new_officer)} is not an officer of AOR {case.aor_id}.", code="aor")
    _training(ctx, new_officer)
    previous = case.officer
    case.officer = new_officer
    ctx.session.add(case)
    ctx.state("case.reassigned", case_id=case.id, previous=previous, officer=new_officer)
    ctx.send(DestinationKind.dm, new_officer, Message(
        title=f"{case.id} reassigned to you",
        text=f"{mention(ctx.actor)} reassigned case {case.id} (AOR {case.aor_id}, at "
        f"'{thread.STAGE_LABELS.get(case.stage, case.stage)}') to you: {mention(previous)} is no "
        "longer an officer on the roster. Carry on with the checklist in the case thread.",
        section="§5.3, §4.3",
        actions=(Action("Show details", ActionValue(ActionId.show_case, case.id)),),
    ), case_id=case.id)


# --- step 0 and opening --------------------------------------------------------------------


def check_may_open(ctx: Ctx) -> Person:
    """Step 0 (§5.3, §4.2(1)): an officer with current training, in an AOR."""
    officer = access.require_person(ctx.session, ctx.actor)
    access.require_role(ctx.session, ctx.actor, Role.officer)
    _training(ctx, ctx.actor)
    if officer.aor_id is None:
        raise Refused("You have no area of responsibility on the roster.", code="no_aor")
    return officer


def _locked_counter(ctx: Ctx) -> CaseCounter:
    """This year's case counter, row-locked: concurrent openings serialize here."""
    year = ctx.now.year
    dialect = ctx.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    # The first case of a year creates the row; racing creators must not collide on it.
    ctx.session.execute(insert(CaseCounter).values(year=year, last=0).on_conflict_do_nothing())
    counter = ctx.session.get(CaseCounter, year, with_for_update=True, populate_existing=True)
    assert counter is not None
    return counter


def _next_case_id(ctx: Ctx, counter: CaseCounter, notice_type: NoticeType) -> str:
    counter.last += 1
    ctx.session.add(counter)
    ctx.session.flush()
    return f"{CASE_PREFIX[notice_type]}-{counter.year}-{counter.last:04d}"


def open_case(
    ctx: Ctx, values: dict[str, Any], *, origin_channel: str, submission_key: str | None
) -> Case:
    officer = check_may_open(ctx)
    counter = _locked_counter(ctx)  # before the duplicate check, so a racing twin waits here
    if submission_key:
        existing = ctx.session.exec(
            select(Case).where(Case.submission_key == submission_key)
        ).first()
        if existing is not None:
            return existing  # a retried submission: the case exists already (R2)
    country = check_country(values.get("issuing_country"))
    _not_future(values, "published_on", today=ctx.today)
    assert officer.aor_id is not None
    aor = ctx.session.get(Aor, officer.aor_id)
    data = CaseCreate(
        aor_id=officer.aor_id,
        notice_type=NoticeType(values["notice_type"]),
        intended_use=IntendedUse(values["intended_use"]),
        extradition_pending=bool(values["extradition_pending"]),
        notice_reference=values["notice_reference"],
        subject_name=values["subject_name"],
        subject_identifiers=values.get("subject_identifiers") or "",
        issuing_country=country,
        offense_summary=values["offense_summary"],
        published_on=values.get("published_on"),
        notes=values.get("notes") or "",
    )
    case = Case.model_validate(
        data,
        update={
            "id": _next_case_id(ctx, counter, data.notice_type),
            "officer": ctx.actor,
            "channel": (aor.channel if aor and aor.channel else origin_channel),
            "opened_at": ctx.now,
            "submission_key": submission_key,
            "stage": Stage.validity.value,
        },
    )
    seal_case(ctx.vault, case)
    ctx.session.add(case)
    ctx.session.flush()
    ctx.session.add(ChecklistItem(case_id=case.id, step=Stage.validity.value))
    ctx.state("case.opened", case_id=case.id, aor=case.aor_id, type=case.notice_type,
              intended_use=case.intended_use)
    return case


# --- step 1: validity ----------------------------------------------------------------------


def _record_request(ctx: Ctx, case: Case, kind: RequestKind, values: dict[str, Any],
                    details: dict[str, Any]) -> UsncbRequest:
    if kind is not RequestKind.validity and indications_exist(case):
        refuse_requesting_ncb(ctx, case)  # defence in depth: the stage guards come first
    webhook = ctx.settings.usncb_channel is UsncbChannelKind.webhook
    if not webhook:
        _not_future(values, "sent_on", today=ctx.today)
    request = UsncbRequest(
        case_id=case.id, kind=kind, sent_by=ctx.actor, details=details,
        sent_on=ctx.today if webhook else values["sent_on"],
        method="webhook" if webhook else values["method"],
        reference="" if webhook else values.get("reference") or "",
        channel=UsncbChannelKind.webhook.value if webhook else UsncbChannelKind.manual.value,
        delivery=Delivery.pending.value if webhook else None,
        recorded_at=ctx.now,
    )
    ctx.session.add(request)
    ctx.session.flush()
    request.external_id = f"NB-{case.id}-{request.id}"
    ctx.session.add(request)
    reminders.on_request(ctx, case, request)
    ctx.state("usncb.request_queued" if webhook else "usncb.request_sent", case_id=case.id,
              request_id=request.id, external_id=request.external_id, kind=kind.value,
              sent_on=request.sent_on, channel=request.channel, details=details)
    return request


def _open_request(ctx: Ctx, case: Case, kind: RequestKind, ref: int | None) -> UsncbRequest:
    request = thread.latest_request(ctx, case.id, kind)
    if request is None:
        raise Refused("Record that the request was sent to the USNCB first.", code="no_request")
    if ref is not None and request.id != ref:
        raise Refused("That request has been superseded.", code="stale")
    if request.answer is not None:
        raise Refused("The answer to this request is already recorded.", code="answered")
    return request


def _answer(ctx: Ctx, request: UsncbRequest, answer: str, values: dict[str, Any],
            details: dict[str, Any] | None = None) -> None:
    _not_future(values, "answered_on", today=ctx.today)
    if values["answered_on"] < request.sent_on:
        raise FormErrors({"answered_on": "cannot be before the request was sent "
                          f"({request.sent_on.isoformat()})"})
    request.answer, request.answered_on, request.answered_by = answer, values["answered_on"], \
        ctx.actor
    request.answer_reference = values.get("reference") or ""
    request.answer_details = details or {}
    request.status = RequestStatus.answered
    ctx.session.add(request)
    reminders.stop(ctx, ReminderKind.usncb_request, request.id)
    ctx.state("usncb.answer", case_id=request.case_id, request_id=request.id,
              kind=request.kind, answer=answer, answered_on=request.answered_on,
              details=details or {})


def validity_sent(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.validity_sent)
    if thread.latest_request(ctx, case.id, RequestKind.validity) is not None:
        raise Refused("The validity request is already recorded.", code="duplicate")
    _record_request(ctx, case, RequestKind.validity, values, {})


def validity_answer(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    guard(ctx, case, ActionId.validity_answer)
    apply_validity_answer(ctx, case, _open_request(ctx, case, RequestKind.validity, ref), values)


def apply_validity_answer(ctx: Ctx, case: Case, request: UsncbRequest,
                          values: dict[str, Any]) -> None:
    """§5.1(1): anything but active closes the case. Shared by officers and callbacks."""
    status = values["status"]
    _answer(ctx, request, status, values)
    if status == "active":
        complete(ctx, case, Stage.validity,
                 f"Active per the USNCB ({values['answered_on'].isoformat()})")
        advance(ctx, case, Stage.review)
    else:
        complete(ctx, case, Stage.validity, f"{status.capitalize()} per the USNCB: unusable")
        close(ctx, case, CloseReason.notice_inactive)


def report_inactive(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.report_inactive)
    ctx.state("notice.inactive", case_id=case.id, status=values["status"], note=values["note"])
    close(ctx, case, CloseReason.notice_inactive)


def withdraw(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.withdraw)
    ctx.state("case.withdrawn", case_id=case.id, reason=values["reason"])
    close(ctx, case, CloseReason.withdrawn)


# --- step 2: preliminary review, doubt, misuse ---------------------------------------------


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


def preliminary_review(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.review)
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


def indications_exist(case: Case) -> bool:
    return case.review_outcome in (ReviewOutcome.doubt.value, ReviewOutcome.misuse.value)


def refuse_requesting_ncb(ctx: Ctx, case: Case) -> None:
    """The tip-off guard (§5.2, O29): no contact with the requesting country's NCB while
    indications of misuse exist. Surfaces never offer it; a crafted request lands here."""
    if indications_exist(case) or case.review_outcome is None:
        raise Refused(
            "§5.2: while there are indications the notice may be prohibited or non-compliant, "
            "do not notify the requesting country or ask it for documents: it could alert it to "
            "the person's location. Confer through the USNCB, State or DOJ instead.",
            code="tip_off",
        )


def screen(ctx: Ctx, case: Case, raw: Mapping[str, object]) -> None:
    """Checks on raw input that refuse (and are recorded as refusals) instead of being
    reported as a field error: a crafted request to contact the requesting country's NCB."""
    if REQUESTING_NCB in as_list(raw.get("partners")):
        refuse_requesting_ncb(ctx, case)


def doubt_step(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.doubt_step)
    partners = list(values["partners"])
    if values["kind"] == "confer" and not partners:
        raise FormErrors({"partners": "name the partner agencies conferred with"})
    if "protected_country" in partners:
        latest = ctx.session.exec(
            select(RiskReview).where(RiskReview.case_id == case.id)
            .order_by(col(RiskReview.id).desc())
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


def doubt_resolve(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.doubt_resolve)
    resolution = values["resolution"]
    done = thread.doubt_done(ctx, case)  # this round's steps only
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


# --- step 3: supervisory approval ----------------------------------------------------------


def _approval_dm(case: Case, approval: Approval) -> Message:
    assert approval.id is not None
    if approval.kind == ApprovalKind.use:
        title = f"Approval requested: {case.id}"
        text = (f"{mention(approval.requested_by)} asks to use {case.id} (AOR {case.aor_id}) "
                f"and to "
                "request its underlying documentation via the USNCB (§5.1(3), §4.2(3)). The "
                "preliminary review found no remaining indications of misuse.")
        section = "§5.1(3), §2.1, §4.2(3)"
    elif approval.kind == ApprovalKind.use_change:
        title = f"Change of intended use: {case.id}"
        text = (f"{mention(approval.requested_by)} asks to change the intended use of {case.id} "
                f"(AOR {case.aor_id}) from {thread.USE_LABELS[case.intended_use]} to "
                f"{thread.USE_LABELS[approval.requested_use or case.intended_use]}. Open details "
                "to read the reason. Use in immigration proceedings needs a granted use "
                "authorization (§5.1(5)).")
        section = "§5.1(5), §4.4(1)"
    else:
        title = f"Footnote 2 exception: {case.id}"
        text = (f"{mention(approval.requested_by)} asks to skip advance disclosure to the "
                f"person for "
                f"{case.id}: notifying would jeopardize law enforcement. Open details to read "
                "the justification.")
        section = "§4.3(8) fn. 2"
    key = f"{case.id}:approval:{approval.id}"
    if approval.status != ApprovalStatus.pending:
        return Message(title=title, text=f"{text}\n\n{thread.DECISION_LABELS[approval.status]} "
                       f"by {mention(str(approval.decided_by))}.", section=section, key=key)
    return Message(title=title, text=text, section=section,
                   actions=thread.decision_actions(approval), key=key)


def _route(ctx: Ctx, case: Case, kind: ApprovalKind, justification: str = "",
           requested_use: IntendedUse | None = None) -> Approval:
    routed_to = access.route_approval(ctx.session, case, today=ctx.today)
    approval = Approval(case_id=case.id, kind=kind, requested_by=ctx.actor,
                        requested_at=ctx.now, routed_to=routed_to,
                        justification=ctx.vault.seal(justification),
                        requested_use=requested_use if requested_use else None)
    ctx.session.add(approval)
    ctx.session.flush()
    ctx.state("approval.requested", case_id=case.id, approval_id=approval.id, kind=kind.value,
              routed_to=routed_to, requested_use=approval.requested_use)
    ctx.send(DestinationKind.dm, routed_to, _approval_dm(case, approval), case_id=case.id)
    reminders.on_approval(ctx, case, approval)
    return approval


def request_approval(ctx: Ctx, case: Case) -> None:
    access.require_owner(case, ctx.actor)
    if case.stage in (Stage.validity.value, Stage.review.value, Stage.doubt.value):
        raise Refused(
            "§5.1(2): the preliminary review (and any doubt) must be completed before "
            "supervisory approval is sought.",
            code="review_first",
        )
    guard(ctx, case, ActionId.request_approval)
    if thread.pending_approval(ctx, case.id, ApprovalKind.use) is not None:
        raise Refused("Approval has already been requested.", code="duplicate")
    _route(ctx, case, ApprovalKind.use)


def _decide(ctx: Ctx, case: Case, ref: int | None, kind: ApprovalKind, status: ApprovalStatus,
            reason: str = "") -> Approval:
    approval = ctx.session.get(Approval, ref) if ref is not None else None
    if approval is None or approval.case_id != case.id or approval.kind != kind:
        raise Refused("That approval request does not exist.", code="no_approval")
    _training(ctx, ctx.actor)
    # Conditional update: of two concurrent deciders exactly one changes the row (R3).
    result = ctx.session.execute(
        update(Approval)
        .where(col(Approval.id) == approval.id, col(Approval.status) == ApprovalStatus.pending)
        .values(status=status.value, decided_by=ctx.actor, decided_at=ctx.now,
                reason=ctx.vault.seal(reason))
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        ctx.session.refresh(approval)
        raise Refused(f"Already decided: {approval.status} by {mention(str(approval.decided_by))}.",
                      code="decided")
    ctx.session.refresh(approval)
    reminders.stop(ctx, ReminderKind.approval, approval.id)
    ctx.state("approval.decided", case_id=case.id, approval_id=approval.id, kind=kind.value,
              status=status.value, reason=reason)
    ctx.send(DestinationKind.dm, approval.routed_to, _approval_dm(case, approval),
             case_id=case.id)
    if status is not ApprovalStatus.approved:
        # The requester learns who decided and why, privately: the reason is free text and
        # stays out of the channel (§4.3(9)); `/notice show` keeps it too.
        ctx.send(DestinationKind.dm, approval.requested_by, Message(
            title=f"{case.id}: {thread.APPROVAL_KIND_LABELS[approval.kind]} "
            f"{thread.DECISION_LABELS[status].lower()}",
            text=f"{thread.DECISION_LABELS[status]} by {mention(ctx.actor)} on "
            f"{ctx.today.isoformat()}. Reason: {reason}",
            section="§5.1(3)",
            actions=(Action("Show details", ActionValue(ActionId.show_case, case.id)),),
        ), case_id=case.id)
    return approval


def send_back(ctx: Ctx, case: Case, stage: Stage, *, to: Stage, why: str) -> None:
    """`stage` is to be done again: its checklist line says why (the thread shows it with ↩),
    and the case returns to `to`."""
    item = ctx.session.get(ChecklistItem, (case.id, stage.value))
    if item is not None:
        item.outcome = why
        ctx.session.add(item)
    advance(ctx, case, to)


def approve(ctx: Ctx, case: Case, ref: int | None) -> None:
    guard(ctx, case, ActionId.approve)
    _decide(ctx, case, ref, ApprovalKind.use, ApprovalStatus.approved)
    # The thread credits the decider (thread.done_text: "Approved (date) by @approver").
    complete(ctx, case, Stage.approval, f"Approved ({ctx.today.isoformat()})")
    resume_after(ctx, case, Stage.approval)


def deny(ctx: Ctx, case: Case, ref: int | None, values: dict[str, Any]) -> None:
    """Final: the case closes. The officer is told who decided and why."""
    guard(ctx, case, ActionId.deny)
    _decide(ctx, case, ref, ApprovalKind.use, ApprovalStatus.denied, values["reason"])
    complete(ctx, case, Stage.approval,
             f"Denied by {mention(ctx.actor)} ({ctx.today.isoformat()}); the officer has the "
             f"reason, "
             "also in /notice show")
    close(ctx, case, CloseReason.denied)


def return_for_changes(ctx: Ctx, case: Case, ref: int | None, values: dict[str, Any]) -> None:
    """Not a denial: the case goes back to the preliminary review, the officer gets the reason
    and asks again once the review is redone."""
    guard(ctx, case, ActionId.return_for_changes)
    approval = _decide(ctx, case, ref, ApprovalKind.use, ApprovalStatus.returned,
                       values["reason"])
    ctx.state("approval.returned", case_id=case.id, approval_id=approval.id,
              reason=values["reason"])
    send_back(ctx, case, Stage.approval, to=Stage.review,
              why=f"Returned for changes by {mention(ctx.actor)} ({ctx.today.isoformat()}); "
              "the officer has the reason")


def approved(ctx: Ctx, case: Case) -> bool:
    """Whether the latest supervisory approval stands (a later round needs its own)."""
    latest = ctx.session.exec(
        select(Approval).where(Approval.case_id == case.id, Approval.kind == ApprovalKind.use)
        .order_by(col(Approval.id).desc()).limit(1)
    ).first()
    return latest is not None and latest.status == ApprovalStatus.approved


# --- step 4: underlying documentation ------------------------------------------------------


def documents_sent(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.documents_sent)
    if thread.latest_request(ctx, case.id, RequestKind.documents) is not None:
        raise Refused("The documents request is already recorded.", code="duplicate")
    _record_request(ctx, case, RequestKind.documents, values,
                    {"documents": values["documents"]})


def _documents_allowed(ctx: Ctx, case: Case) -> None:
    """O3, O24, O29: documents only after approval and with no indications of misuse."""
    if not approved(ctx, case):
        raise Refused("§2.1, §5.1(4): underlying documentation is requested only after "
                      "supervisory approval.", code="approval_first")
    if case.review_outcome != ReviewOutcome.no_indications:
        raise Refused("§2.1, §5.2: documentation is not requested while there are indications "
                      "of misuse.", code="indications")


def documents_answer(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    guard(ctx, case, ActionId.documents_answer)
    apply_documents_answer(ctx, case, _open_request(ctx, case, RequestKind.documents, ref),
                           values)


def apply_documents_answer(ctx: Ctx, case: Case, request: UsncbRequest,
                           values: dict[str, Any]) -> None:
    if values["answer"] == "received" and not values["received"]:
        raise FormErrors({"received": "name the documents received"})
    _answer(ctx, request, values["answer"], values, {"received": values["received"]})


def record_no_response(ctx: Ctx, case: Case, kind: RequestKind, ref: int | None) -> None:
    """§6: the lack of a response is itself recorded, dated."""
    guard(ctx, case, ActionId.documents_no_response if kind is RequestKind.documents
          else ActionId.use_auth_no_response)
    request = _open_request(ctx, case, kind, ref)
    assert request.id is not None
    add_no_response(ctx, request)


def add_no_response(ctx: Ctx, request: UsncbRequest) -> bool:
    """Record 'no response as of today' once per day; used by officers and by reminders."""
    assert request.id is not None
    exists = ctx.session.exec(
        select(UsncbNoResponse).where(
            UsncbNoResponse.request_id == request.id, UsncbNoResponse.as_of == ctx.today
        )
    ).first()
    if exists is not None:
        return False
    ctx.session.add(UsncbNoResponse(request_id=request.id, as_of=ctx.today,
                                    recorded_by=ctx.actor, recorded_at=ctx.now))
    ctx.state("usncb.no_response", case_id=request.case_id, request_id=request.id,
              kind=request.kind, as_of=ctx.today)
    return True


def documents_review(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    guard(ctx, case, ActionId.documents_review)
    request = thread.latest_request(ctx, case.id, RequestKind.documents)
    if request is None or (ref is not None and request.id != ref):
        raise Refused("Record the documents request first.", code="no_request")
    assert request.id is not None
    received = request.answer == "received"
    silent = bool(thread.no_responses(ctx, request.id))
    if request.answer is None and not silent:
        raise Refused("Record the USNCB's answer, or that there was no response, first.",
                      code="no_answer")
    errors: dict[str, str] = {}
    if received and values.get("indications") is None:
        errors["indications"] = "review the documents for indications of misuse (§4.3(4))"
    if received and values.get("better_evidence") is None:
        errors["better_evidence"] = "say whether the documents are better evidence (§5.1(4))"
    in_lieu = not (received and values.get("better_evidence"))
    if in_lieu and not values.get("necessity"):
        errors["necessity"] = ("§4.2(2): the notice is used in lieu of the documents only if "
                               "necessary; explain why")
    if errors:
        raise FormErrors(errors)
    if request.answer is None:
        request.status = RequestStatus.no_response
        ctx.session.add(request)
        reminders.stop(ctx, ReminderKind.usncb_request, request.id)
    case.documents_preferred = bool(received and values.get("better_evidence"))
    ctx.state("documents.reviewed", case_id=case.id, received=received,
              indications=values.get("indications"), documents_preferred=case.documents_preferred,
              necessity=values.get("necessity"))
    if received and values.get("indications"):
        # New indications send the case back to §5.2's doubt minimum.
        case.review_outcome = ReviewOutcome.doubt
        complete(ctx, case, Stage.documents, "Documents reviewed: indications found")
        advance(ctx, case, Stage.doubt)
        return
    outcome = ("Documents received and reviewed; they are better evidence and will be used"
               if case.documents_preferred else
               "Documents received and reviewed" if received else
               "No documents received; the USNCB's lack of response is recorded")
    complete(ctx, case, Stage.documents, outcome)
    advance(ctx, case, Stage.use_authorization)


# --- step 5: use authorization -------------------------------------------------------------


def use_auth_sent(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.use_auth_sent)
    if thread.covering_use_request(ctx, case) is not None:
        raise Refused("The use authorization request is already recorded.", code="duplicate")
    errors: dict[str, str] = {}
    purpose = IntendedUse(values["purpose"])
    if purpose.value != case.intended_use:
        # The case's intended use governs; changing it is its own approved step (§5.1(5)).
        errors["purpose"] = (
            f"the case's intended use is {thread.USE_LABELS[case.intended_use]}; the request "
            "must cover it. To change the intended use, press 'Change intended use' (an "
            "approver decides)")
    if case.extradition_pending and not values.get("doj_coordination"):
        errors["doj_coordination"] = ("an extradition request is pending: record the "
                                      "coordination with DOJ (§2.2, §4.4(2))")
    if errors:
        raise FormErrors(errors)
    _record_request(ctx, case, RequestKind.use_authorization, values,
                    {"purpose": purpose.value, "doj_coordination": values.get("doj_coordination")})
    if purpose in (IntendedUse.immigration, IntendedUse.both):
        # §4.4(1): OPLA facilitates use authorization for immigration proceedings.
        message = Message(
            title=f"{case.id}: use authorization for immigration proceedings",
            text=f"{mention(case.officer)} requested use authorization via the USNCB for {case.id} "
            f"(AOR {case.aor_id}) for immigration proceedings. OPLA facilitates this request "
            "(§4.4(1))" + ("; an extradition request is pending: coordinate with DOJ "
                           "(§4.4(2))." if case.extradition_pending else "."),
            section="§4.4",
            actions=(Action("Show details", ActionValue(ActionId.show_case, case.id)),),
        )
        for user_id in _people_with_role(ctx, Role.opla):
            ctx.send(DestinationKind.dm, user_id, message, case_id=case.id)


def use_auth_answer(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    guard(ctx, case, ActionId.use_auth_answer)
    request = _open_request(ctx, case, RequestKind.use_authorization, ref)
    if values["answer"] == "no_response_proceed":
        purpose = IntendedUse(request.details.get("purpose", case.intended_use))
        if purpose is not IntendedUse.enforcement or case.intended_use != IntendedUse.enforcement:
            raise FormErrors({"answer": "§5.1(5): a notice cannot be introduced or disclosed in "
                              "immigration proceedings without use authorization"})
        assert request.id is not None
        if not thread.no_responses(ctx, request.id):
            add_no_response(ctx, request)
    apply_use_auth_answer(ctx, case, request, values)


def apply_use_auth_answer(ctx: Ctx, case: Case, request: UsncbRequest,
                          values: dict[str, Any]) -> None:
    answer = values["answer"]
    _answer(ctx, request, answer, values)
    if not thread.covers(request.details.get("purpose"), case.intended_use):
        # An answer to a request made for an earlier intended use: on the record, but it
        # neither authorizes nor ends the use the case has now (§5.1(5)).
        ctx.state("usncb.answer_superseded", case_id=case.id, request_id=request.id,
                  purpose=request.details.get("purpose"), intended_use=case.intended_use)
        return
    if answer == "denied":
        complete(ctx, case, Stage.use_authorization, "Use authorization denied")
        close(ctx, case, CloseReason.use_not_authorized)
        return
    purpose = thread.USE_LABELS[request.details.get("purpose") or case.intended_use]
    label = (f"Use authorization granted for {purpose}" if answer == "granted" else
             "No response to the use authorization request (recorded); enforcement use only")
    complete(ctx, case, Stage.use_authorization, label)
    resume_after(ctx, case, Stage.use_authorization)


# --- a change of intended use: its own step, decided by an approver (§5.1(5), §4.4(1)) ------


def change_use(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.change_use)
    wanted = IntendedUse(values["intended_use"])
    if wanted.value == case.intended_use:
        raise FormErrors({"intended_use": "that is already the case's intended use"})
    if thread.pending_approval(ctx, case.id, ApprovalKind.use_change) is not None:
        raise Refused("A change of intended use is already waiting for a decision.",
                      code="pending")
    _route(ctx, case, ApprovalKind.use_change, values["reason"], requested_use=wanted)


def approve_use_change(ctx: Ctx, case: Case, ref: int | None) -> None:
    """The new intended use holds from now on. A case past the use authorization whose request
    does not cover the new use goes back to that step for a new request (and, for immigration
    proceedings, a grant); the acknowledgment at the end is given again."""
    guard(ctx, case, ActionId.approve_use_change)
    approval = _decide(ctx, case, ref, ApprovalKind.use_change, ApprovalStatus.approved)
    previous, case.intended_use = case.intended_use, IntendedUse(
        approval.requested_use or case.intended_use)
    ctx.session.add(case)
    ctx.state("case.intended_use_changed", case_id=case.id, previous=previous,
              intended_use=case.intended_use, approval_id=approval.id)
    later = (Stage.disclosure, Stage.awaiting_response, Stage.representations, Stage.ready)
    if thread.covering_use_request(ctx, case) is None:
        stale = thread.latest_request(ctx, case.id, RequestKind.use_authorization)
        if stale is not None and stale.answer is None:
            reminders.stop(ctx, ReminderKind.usncb_request, stale.id)
        if case.stage in {s.value for s in later}:
            for stage in (Stage.use_authorization, Stage.representations):
                item = ctx.session.get(ChecklistItem, (case.id, stage.value))
                if item is not None:
                    reopen(ctx, item)
            reminders.stop(ctx, ReminderKind.ready_outcome, case.id)
            advance(ctx, case, Stage.use_authorization)


def refuse_use_change(ctx: Ctx, case: Case, ref: int | None, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.refuse_use_change)
    _decide(ctx, case, ref, ApprovalKind.use_change, ApprovalStatus.denied, values["reason"])


# --- USNCB answers arriving by callback, and delivery of webhook requests ---------------------

CALLBACK_ANSWERS: dict[RequestKind, frozenset[str]] = {
    RequestKind.validity: frozenset({"active", "suspended", "withdrawn", "expired"}),
    RequestKind.documents: frozenset({"received", "declined"}),
    RequestKind.use_authorization: frozenset({"granted", "denied"}),
}
STAGE_OF_REQUEST = {RequestKind.validity: Stage.validity, RequestKind.documents: Stage.documents,
                    RequestKind.use_authorization: Stage.use_authorization}


def request_by_external_id(ctx: Ctx, external_id: object) -> UsncbRequest:
    # Looked up only when it can be one of ours (ids are short, printable; NUL cannot even
    # be sent to PostgreSQL).
    usable = isinstance(external_id, str) and 0 < len(external_id) <= 80 \
        and external_id.isprintable()
    request = ctx.session.exec(
        select(UsncbRequest).where(UsncbRequest.external_id == str(external_id))
    ).first() if usable else None
    if request is None:
        raise Refused(f"Unknown request id {inbound.shown(external_id)}.",
                      code="unknown_request")
    return request


def callback_answer(ctx: Ctx, body: dict[str, Any]) -> tuple[Case, bool]:
    """Record the USNCB's answer exactly as a manual answer would be; (case, newly recorded).
    An answer already on record is acknowledged again and changes nothing."""
    request = request_by_external_id(ctx, body.get("request_id"))
    case = load_case(ctx, request.case_id)
    # Read again now that the case is locked: a simultaneous answer to the same request may
    # have landed while this one waited for the lock (PostgreSQL), and exactly one may land.
    ctx.session.refresh(request)
    kind = RequestKind(request.kind)
    answer = body.get("answer")
    if request.answer is not None:
        if answer != request.answer:
            raise Refused(f"Request {request.external_id} was already answered "
                          f"'{request.answer}'.", code="answered")
        return case, False
    errors: dict[str, str] = {}
    if not isinstance(answer, str) or answer not in CALLBACK_ANSWERS[kind]:
        errors["answer"] = f"must be one of {', '.join(sorted(CALLBACK_ANSWERS[kind]))}"
    try:
        answered_on = date.fromisoformat(str(body.get("answered_on")))
    except ValueError:
        errors["answered_on"] = "must be a date (YYYY-MM-DD)"
        answered_on = ctx.today
    if body.get("reference") is not None and not isinstance(body.get("reference"), str):
        errors["reference"] = "must be a string"
    documents = body.get("documents") or []
    if not isinstance(documents, list) or any(not isinstance(d, str) for d in documents):
        errors["documents"] = "must be a list of document kinds"
    if errors:
        raise FormErrors(errors)
    require_stage(case, STAGE_OF_REQUEST[kind])
    values = {"answered_on": answered_on, "reference": str(body.get("reference") or ""),
              "status": answer, "answer": answer, "received": documents}
    if kind is RequestKind.validity:
        apply_validity_answer(ctx, case, request, values)
    elif kind is RequestKind.documents:
        apply_documents_answer(ctx, case, request, values)
    else:
        apply_use_auth_answer(ctx, case, request, values)
    return case, True


def _failed_request(ctx: Ctx, case: Case, ref: int | None) -> UsncbRequest:
    request = ctx.session.get(UsncbRequest, ref) if ref is not None else None
    if request is None or request.case_id != case.id:
        raise Refused("That request does not exist.", code="no_request")
    if request.delivery != Delivery.failed or request.answer is not None:
        raise Refused("That request is not waiting to be re-sent.", code="stale")
    require_stage(case, STAGE_OF_REQUEST[RequestKind(request.kind)])
    return request


def retry_delivery(ctx: Ctx, case: Case, ref: int | None) -> None:
    guard(ctx, case, ActionId.retry_delivery)
    request = _failed_request(ctx, case, ref)
    request.delivery, request.delivery_error = Delivery.pending.value, None
    ctx.session.add(request)
    ctx.state("usncb.delivery_retry", case_id=case.id, request_id=request.id)


def switch_to_manual(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    """A request the webhook could not deliver, sent by the officer instead (§6 keeps both)."""
    guard(ctx, case, ActionId.switch_manual)
    request = _failed_request(ctx, case, ref)
    _not_future(values, "sent_on", today=ctx.today)
    request.channel, request.delivery = UsncbChannelKind.manual.value, None
    request.sent_on, request.method = values["sent_on"], values["method"]
    request.reference = values.get("reference") or ""
    ctx.session.add(request)
    ctx.state("usncb.switched_to_manual", case_id=case.id, request_id=request.id,
              sent_on=request.sent_on)


# --- step 6: disclosure --------------------------------------------------------------------


def disclosure(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.disclosure)
    _not_future(values, "provided_on", today=ctx.today)
    if values["respond_by"] <= values["provided_on"]:
        raise FormErrors({"respond_by": "give the person a meaningful time to respond: a date "
                          "after the documents were provided"})
    if thread.pending_approval(ctx, case.id, ApprovalKind.disclosure_exception) is not None:
        raise Refused("A footnote 2 exception is waiting for sign-off.", code="pending")
    ctx.state("disclosure.provided", case_id=case.id, provided_on=values["provided_on"],
              respond_by=values["respond_by"], provided=values["provided"])
    complete(ctx, case, Stage.disclosure,
             f"Documents provided {values['provided_on'].isoformat()}; the person may respond "
             f"until {values['respond_by'].isoformat()}")
    # §5.1(6): the opportunity to respond is real only if the case waits for it.
    case.respond_by = values["respond_by"]
    advance(ctx, case, Stage.awaiting_response)
    reminders.on_response_window(ctx, case)


def person_response(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    """What came of the person's opportunity to respond. 'None' only once the window closed;
    a contest needs a note, and one raising indications sends the case back to review."""
    guard(ctx, case, ActionId.person_response)
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


def disclosure_exception(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.disclosure_exception)
    if thread.pending_approval(ctx, case.id, ApprovalKind.disclosure_exception) is not None:
        raise Refused("A footnote 2 exception is already waiting for sign-off.", code="pending")
    _route(ctx, case, ApprovalKind.disclosure_exception, values["justification"])


def sign_off_exception(ctx: Ctx, case: Case, ref: int | None) -> None:
    guard(ctx, case, ActionId.sign_off_exception)
    _decide(ctx, case, ref, ApprovalKind.disclosure_exception, ApprovalStatus.approved)
    complete(ctx, case, Stage.disclosure,
             "Footnote 2 exception: advance disclosure would jeopardize law enforcement; "
             "signed off")
    advance(ctx, case, Stage.representations)


def refuse_exception(ctx: Ctx, case: Case, ref: int | None, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.refuse_exception)
    _decide(ctx, case, ref, ApprovalKind.disclosure_exception, ApprovalStatus.denied,
            values["reason"])


# --- step 7: representations ---------------------------------------------------------------


def representations(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.representations)
    errors = {n: "must be acknowledged (yes)" for n in ("not_a_warrant", "i213") if not values[n]}
    if errors:
        raise FormErrors(errors)
    _training(ctx, ctx.actor)  # §5.3: training current at the moment of use
    complete(ctx, case, Stage.representations,
             "Acknowledged: not a U.S. arrest warrant; I-213 notes 'foreign fugitive'")
    resume_after(ctx, case, Stage.representations)


def on_ready(ctx: Ctx, case: Case) -> None:
    ctx.state("case.ready", case_id=case.id, documents_preferred=case.documents_preferred)
    reminders.on_ready(ctx, case)


# --- the end: how the notice was used -----------------------------------------------------


def _check_outcome(ctx: Ctx, case: Case, outcome: UseOutcome) -> None:
    """The outcome must be a use the case was cleared for (§5.1(5))."""
    use = IntendedUse(case.intended_use)
    label = thread.USE_LABELS[use]
    if outcome is UseOutcome.immigration_proceedings:
        granted = thread.covering_use_request(ctx, case)
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


def record_outcome(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    guard(ctx, case, ActionId.record_outcome)
    _not_future(values, "used_on", today=ctx.today)
    outcome = UseOutcome(values["outcome"])
    _check_outcome(ctx, case, outcome)
    ctx.state("case.use_recorded", case_id=case.id, outcome=outcome.value,
              used_on=values["used_on"], note=values.get("note"))
    _end(ctx, case, outcome, values["used_on"])


def close_case(ctx: Ctx, case: Case, values: dict[str, Any]) -> None:
    """The FRO (or a designee) closes a ready case whose officer did not record its use."""
    guard(ctx, case, ActionId.close_case)
    _not_future(values, "used_on", today=ctx.today)
    outcome = UseOutcome(values["outcome"])
    _check_outcome(ctx, case, outcome)
    ctx.state("case.use_recorded", case_id=case.id, outcome=outcome.value,
              used_on=values.get("used_on"), reason=values["reason"], by_approver=True)
    _end(ctx, case, outcome, values.get("used_on"))


GUARDS: dict[ActionId, Guard] = {
    ActionId.validity_sent: Guard("owner", (Stage.validity,)),
    ActionId.validity_answer: Guard("owner", (Stage.validity,)),
    ActionId.review: Guard("owner", (Stage.review,)),
    ActionId.doubt_step: Guard("owner", (Stage.doubt,)),
    ActionId.doubt_resolve: Guard("owner", (Stage.doubt,)),
    ActionId.request_approval: Guard("owner", (Stage.approval,)),
    ActionId.approve: Guard("approver", (Stage.approval,)),
    ActionId.deny: Guard("approver", (Stage.approval,)),
    ActionId.documents_sent: Guard("owner", (Stage.documents,), _documents_allowed, use=True),
    ActionId.documents_answer: Guard("owner", (Stage.documents,), use=True),
    ActionId.documents_no_response: Guard("owner", (Stage.documents,), use=True),
    ActionId.documents_review: Guard("owner", (Stage.documents,), use=True),
    ActionId.use_auth_sent: Guard("owner", (Stage.use_authorization,), use=True),
    ActionId.use_auth_answer: Guard("owner", (Stage.use_authorization,), use=True),
    ActionId.use_auth_no_response: Guard("owner", (Stage.use_authorization,), use=True),
    ActionId.disclosure: Guard("owner", (Stage.disclosure,), use=True),
    ActionId.disclosure_exception: Guard("owner", (Stage.disclosure,), use=True),
    ActionId.sign_off_exception: Guard("approver", (Stage.disclosure,)),
    ActionId.refuse_exception: Guard("approver", (Stage.disclosure,)),
    ActionId.return_for_changes: Guard("approver", (Stage.approval,)),
    ActionId.change_use: Guard("owner"),
    ActionId.approve_use_change: Guard("approver"),
    ActionId.refuse_use_change: Guard("approver"),
    ActionId.person_response: Guard("owner", (Stage.awaiting_response,), use=True),
    ActionId.representations: Guard("owner", (Stage.representations,), use=True),
    ActionId.record_outcome: Guard("owner", (Stage.ready,)),
    ActionId.close_case: Guard("approver", (Stage.ready,)),
    ActionId.retry_delivery: Guard("owner"),
    ActionId.switch_manual: Guard("owner"),
    ActionId.report_inactive: Guard("owner_or_approver"),
    ActionId.withdraw: Guard("owner_or_approver"),
}
