"""`/notice` subcommands, parsed once for every surface."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum

from sqlmodel import col, select

from bot.core import access, buttons, labels, thread
from bot.core.context import Ctx
from bot.core.details import open_case_details
from bot.core.errors import Refused
from bot.core.forms import (
    INTENDED_USES,
    PROHIBITED_CATEGORIES,
    REVIEW_OUTCOMES,
    REVIEW_SOURCES,
    RISK_INDICATORS,
    open_case_form,
)
from bot.core.identities import PlatformUser, acting_as
from bot.core.steps import any_stage, opening
from bot.core.transitions import load_case
from bot.messages import Action, ActionId, ActionValue, Message, Outcome, RefusalCode, mention
from config.platforms import Platform
from storage.models import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    Delegation,
    Person,
    RequestKind,
    RequestStatus,
    RiskAnswer,
    RiskReview,
    Role,
    Stage,
    UsncbRequest,
)

INTENDED_USE_LABELS = {o.value: o.label for o in INTENDED_USES}
REVIEW_OUTCOME_LABELS = {o.value: o.label for o in REVIEW_OUTCOMES}

HELP = """`/notice open` start a case for a Red Notice or Wanted Person Diffusion
`/notice show ID` details of a case (authorized users only)
`/notice list` your open cases and approvals waiting for you
`/notice training` your training status (supervisors and managers: their AOR's)
`/notice delegate @user until YYYY-MM-DD` lend your approval authority to a designee
`/notice reassign ID @user` hand a departed officer's case to a trained officer (FRO, designee)
`/notice hold ID REASON` litigation hold (records officers)
`/notice digest` your weekly digest now (managers)
`/notice help` this text"""
# How a platform's users type the commands, where that differs: shown below the help, and so
# on the record with it.
PLATFORM_HELP: dict[Platform, str] = {
    Platform.teams: "Type these in your 1:1 chat with noticebot, with or without `notice` and "
                    "`/`, or in a channel after @noticebot (`@noticebot notice list`). "
                    "`notice home` shows your open cases and the approvals waiting for you.",
}

APPROVAL_LABELS: dict[str, str] = {ApprovalKind.use: "supervisory approval",
                   ApprovalKind.disclosure_exception: "footnote 2 exception sign-off"}
# A person named in a command: a platform's mention (`<@id>`, `<@id|name>`) or a typed roster
# id (`@id`, `id`).
USER_MENTION = re.compile(r"^(?:<@([^|<>\s]+)(?:\|[^>]*)?>|@?([^\s<>@|]+))$")
MAX_DELEGATION_DAYS = 365


class CommandName(StrEnum):
    """The `/notice` subcommands (and `unknown` for anything else); the record names each
    command entry `command.<name>`."""

    open = "open"
    show = "show"
    list = "list"
    training = "training"
    delegate = "delegate"
    reassign = "reassign"
    hold = "hold"
    digest = "digest"
    help = "help"
    unknown = "unknown"


@dataclass(frozen=True)
class Command:
    name: CommandName
    args: tuple[str, ...] = ()
    case_id: str | None = None


# Subcommands whose first argument is a case id.
TAKES_CASE = frozenset({CommandName.show, CommandName.hold, CommandName.reassign})
# Subcommands that change something (a delegation, a reassignment, a hold): a surface that may
# hand the same request on twice gives it a delivery key, so that it is acted on once.
CHANGES_STATE = frozenset({CommandName.delegate, CommandName.reassign, CommandName.hold})


def changes_state(text: str) -> bool:
    return parse(text).name in CHANGES_STATE


# Commands whose answer holds nothing about a case or a person: it may be shown to everyone
# where the command was typed.
ANSWER_IS_PUBLIC = frozenset({CommandName.help, CommandName.unknown})


def answer_is_public(text: str) -> bool:
    return parse(text).name in ANSWER_IS_PUBLIC


def parse(text: str) -> Command:
    words = text.strip().split()
    if words and words[0] == "/notice":
        words = words[1:]
    if not words:
        return Command(CommandName.help)
    word, args = words[0].lower(), tuple(words[1:])
    try:
        name = CommandName(word)
    except ValueError:
        name = CommandName.unknown
    if name is CommandName.unknown:  # also "/notice unknown": not a command of ours
        return Command(CommandName.unknown, (word,))
    case_id = args[0].upper() if name in TAKES_CASE and args else None
    return Command(name, args, case_id)


def run(ctx: Ctx, command: Command, *, channel: str) -> Outcome:
    if command.name is CommandName.open:
        opening.check_may_open(ctx, origin_channel=channel)
        return Outcome(form=open_case_form())
    if command.name is CommandName.show:
        return show_case(ctx, command.case_id)
    if command.name is CommandName.list:
        return list_cases(ctx)
    if command.name is CommandName.training:
        return training(ctx)
    if command.name is CommandName.delegate:
        return delegate(ctx, command.args)
    if command.name is CommandName.hold:
        return hold(ctx, command)
    if command.name is CommandName.reassign:
        return reassign(ctx, command)
    if command.name is CommandName.digest:
        from bot.schedule.digest import build_digest

        access.require_role(ctx.session, ctx.actor, Role.manager)
        return Outcome(private=[build_digest(ctx, ctx.actor)])
    prefix = "" if command.name is CommandName.help else f"Unknown command '{command.args[0]}'.\n"
    how = PLATFORM_HELP.get(ctx.platform) if ctx.platform is not None else None
    return Outcome(ok=command.name is CommandName.help, private=[Message(
        title="noticebot", text=prefix + HELP + (f"\n\n{how}" if how else ""))])


def hold(ctx: Ctx, command: Command) -> Outcome:
    """`/notice hold ID REASON`: a litigation hold on one case (records officers only)."""
    from bot.records.holds import place_hold

    if len(command.args) < 2:
        raise Refused("Usage: /notice hold CASE-ID REASON", code=RefusalCode.usage)
    reason = " ".join(command.args[1:])
    placed = place_hold(ctx, matter=reason, authority=f"placed in chat by {ctx.actor}",
                        reason=reason, case_id=command.case_id)
    return Outcome(case_id=command.case_id, private=[Message(
        title=f"Litigation hold {placed.id} placed",
        text=f"{command.case_id} will not be disposed of while hold {placed.id} is active "
        "(§6). Records officers lift holds with `noticebot records hold lift`.",
        section="§6",
    )])


def reassign(ctx: Ctx, command: Command) -> Outcome:
    """`/notice reassign ID @user`: the FRO or a designee hands the case of an officer who left
    the roster to another trained officer of the AOR (§5.3, §4.3)."""
    usage = "Usage: /notice reassign CASE-ID @officer"
    if len(command.args) != 2:
        raise Refused(usage, code=RefusalCode.usage)
    named = named_person(ctx, command.args[1])
    if named is None:
        raise Refused(f"'{command.args[1]}' is not a user. {usage}", code=RefusalCode.usage)
    case = load_case(ctx, command.case_id)
    any_stage.reassign(ctx, case, named)
    thread.sync(ctx, case)
    return Outcome(case_id=case.id, private=[Message(
        title=f"{case.id} reassigned",
        text=f"{mention(case.officer)} now has case {case.id} and has been told.",
        section="§5.3, §4.3",
    )])


def show_case(ctx: Ctx, case_id: str | None) -> Outcome:
    """Subject details, privately, to authorized users only; the read itself is recorded."""
    access.require_person(ctx.session, ctx.actor)
    case = load_case(ctx, case_id, lock=False)
    if not access.may_view_details(ctx.session, case, ctx.actor, today=ctx.today):
        raise Refused(f"You are not authorized to see the details of {case.id}.",
                      code=RefusalCode.not_authorized)
    ctx.record("read", "case.viewed", case_id=case.id)
    requests = ctx.session.exec(
        select(UsncbRequest).where(UsncbRequest.case_id == case.id)
        .order_by(col(UsncbRequest.id))
    ).all()
    notes = [
        f"USNCB {labels.REQUEST_LABELS.get(RequestKind(r.kind), r.kind)} request sent "
        f"{r.sent_on}: "
        + (f"answer '{r.answer.replace('_', ' ')}' on {r.answered_on}" if r.answer
           else r.status.replace("_", " "))
        for r in requests
    ]
    approvals = ctx.session.exec(
        select(Approval).where(Approval.case_id == case.id).order_by(col(Approval.id))
    ).all()
    notes += [_approval_note(ctx, a) for a in approvals]
    notes += review_notes(ctx, case)
    details = open_case_details(ctx.vault, case)
    return Outcome(case_id=case.id, private=[Message(
        title=f"{case.id} (private)",
        text=details.offense_summary,
        fields=(
            ("Subject", details.subject_name),
            ("Identifiers", details.subject_identifiers or "-"),
            ("Issuing country", details.issuing_country),
            ("Notice reference", details.notice_reference),
            ("Published", case.published_on.isoformat() if case.published_on else "unknown"),
            ("Intended use", INTENDED_USE_LABELS.get(case.intended_use, case.intended_use)),
            ("Extradition pending", "yes" if case.extradition_pending else "no"),
            ("Stage", labels.STAGE_LABELS.get(case.stage, case.stage)),
            *((("Respond by", case.respond_by.isoformat()),) if case.respond_by else ()),
            *((("Use", labels.OUTCOME_LABELS.get(case.use_outcome, case.use_outcome)
                + (f" ({case.used_on.isoformat()})" if case.used_on else "")),)
              if case.use_outcome else ()),
            ("Notes", details.notes or "-"),
        ),
        notes=tuple(notes),
    )])


def _approval_note(ctx: Ctx, approval: Approval) -> str:
    """Who was asked, who decided, when and why (the officer must see a denial's reason)."""
    kind = labels.APPROVAL_KIND_LABELS.get(approval.kind, approval.kind)
    note = f"{kind} routed to {mention(approval.routed_to)}"
    if approval.requested_use:
        note += f" (to {labels.USE_LABELS.get(approval.requested_use, approval.requested_use)})"
    if approval.justification:
        note += f" ({ctx.vault.open(approval.justification)})"
    decision = labels.DECISION_LABELS.get(approval.status, approval.status).lower()
    if approval.decided_by and approval.status != ApprovalStatus.cancelled:
        note += f": {decision} by {mention(approval.decided_by)}"
        if approval.decided_at is not None:
            note += f" on {approval.decided_at.date().isoformat()}"
    else:
        note += f": {decision}"
    reason = ctx.vault.open(approval.reason) if approval.reason else ""
    return note + (f"; reason: {reason}" if reason else "")


def review_notes(ctx: Ctx, case: Case) -> list[str]:
    """The latest preliminary review: why a notice may or must not be used. Shown with the
    case's details, so OPLA and the AOR's approvers, told a notice must not be used, see why."""
    review = ctx.session.exec(
        select(RiskReview).where(RiskReview.case_id == case.id)
        .order_by(col(RiskReview.id).desc())
        .limit(1)
    ).first()
    if review is None or review.id is None:
        return []
    answers = ctx.session.exec(select(RiskAnswer).where(RiskAnswer.review_id == review.id)).all()
    present = [RISK_INDICATORS.get(a.indicator, a.indicator)
               + (" (set automatically)" if a.automatic else "")
               + (f" — does not apply: {ctx.vault.open(a.not_applicable_note)}"
                  if a.not_applicable_note else "")
               for a in answers if a.answer]
    categories = [PROHIBITED_CATEGORIES.get(p, p) for p in review.prohibited_categories]
    if review.serious_crime_exception and "administrative_private" in \
            review.prohibited_categories:
        categories.append("(the administrative matter is aimed at a serious crime)")
    notes_text = ctx.vault.open(review.notes) if review.notes else ""
    return [
        f"Preliminary review by {mention(review.reviewed_by)} on "
        f"{review.reviewed_at.date().isoformat()}: "
        f"{REVIEW_OUTCOME_LABELS.get(review.outcome, review.outcome)}",
        "Prohibited categories: " + ("; ".join(categories) or "none"),
        "Risk indicators present: " + ("; ".join(present) or "none"),
        "Sources reviewed: " + "; ".join(REVIEW_SOURCES.get(s, s) for s in review.sources),
        *([f"Review notes: {notes_text}"] if notes_text else []),
    ]


def list_cases(ctx: Ctx) -> Outcome:
    access.require_person(ctx.session, ctx.actor)
    mine = ctx.session.exec(
        select(Case).where(Case.officer == ctx.actor, col(Case.stage) != Stage.closed)
        .order_by(col(Case.opened_at))
    ).all()
    waiting = ctx.session.exec(
        select(Approval).where(Approval.routed_to == ctx.actor,
                               Approval.status == ApprovalStatus.pending)
        .order_by(col(Approval.requested_at))
    ).all()
    lines = [f"{c.id} · {labels.STAGE_LABELS.get(c.stage, c.stage)}" for c in mine]
    text = "Your open cases:\n" + ("\n".join(lines) if lines else "none")
    text += f"\nApprovals waiting for you: {len(waiting) or 'none'}"
    # Each case's current step with its buttons, and each approval with its decision
    # buttons: a surface that has not seen the thread (a restarted console) can act on them.
    steps_now = [step for step in (thread.current_step(ctx, c) for c in mine) if step]
    decisions = [Message(
        title=f"{a.case_id}: {APPROVAL_LABELS.get(a.kind, a.kind)} waiting for you",
        text=f"Requested by {mention(a.requested_by)} on {a.requested_at.date().isoformat()}.",
        actions=buttons.decision_actions(a),
    ) for a in waiting]
    return Outcome(private=[Message(title="Your cases", text=text),
                            *[replace(m, title=f"{m.title} · {m.key.split(':')[0]}", key=None)
                              for m in steps_now if m.key], *decisions])


def training(ctx: Ctx) -> Outcome:
    """Your own status; an FRO, designee or manager also sees their AOR's (§4.2(1), O6)."""
    me = access.require_person(ctx.session, ctx.actor)
    days = ctx.settings.training_validity_days
    own = access.training_status(ctx.session, ctx.actor, today=ctx.today, validity_days=days)
    text = f"Your training: {own.describe()}."
    roles = access.roles_of(ctx.session, ctx.actor)
    if me.aor_id and roles & {Role.supervisor.value, Role.manager.value}:
        people = ctx.session.exec(
            select(Person).where(Person.aor_id == me.aor_id, col(Person.active).is_(True))
            .order_by(col(Person.user_id))
        ).all()
        rows = []
        for person in people:
            status = access.training_status(ctx.session, person.user_id, today=ctx.today,
                                            validity_days=days)
            mark = "✅" if status.current else "⚠️"
            rows.append(f"{mark} {mention(person.user_id)}: {status.describe()}")
        current = sum(1 for r in rows if r.startswith("✅"))
        text += f"\n\nAOR {me.aor_id}: {current} of {len(rows)} current.\n" + "\n".join(rows)
    return Outcome(private=[Message(title="Training (§5.3)", text=text, section="§4.2(1), §5.3")])


def named_person(ctx: Ctx, given: str) -> str | None:
    """The person id a command's argument names: a mention of a user of the actor's platform is
    resolved through their identity there; otherwise the id is taken as given (a roster id,
    or a Slack user id from before identities existed). None if it names no one at all."""
    match = USER_MENTION.match(given)
    if match is None:
        return None
    named = match.group(1) or match.group(2)
    if ctx.platform is not None and ctx.platform is not Platform.console:
        resolved = acting_as(ctx.session, PlatformUser(ctx.platform, named))
        if access.person(ctx.session, resolved) is not None:
            return resolved
    return named


def delegate(ctx: Ctx, args: tuple[str, ...]) -> Outcome:
    me = access.require_person(ctx.session, ctx.actor)
    usage = "Usage: /notice delegate @user until YYYY-MM-DD"
    if len(args) != 3 or args[1].lower() != "until":
        raise Refused(usage, code=RefusalCode.usage)
    delegate_id = named_person(ctx, args[0])
    if delegate_id is None:
        raise Refused(f"'{args[0]}' is not a user. {usage}", code=RefusalCode.usage)
    try:
        until = date.fromisoformat(args[2])
    except ValueError:
        raise Refused(f"'{args[2]}' is not a date (YYYY-MM-DD).", code=RefusalCode.usage) from None
    if me.aor_id is None or ctx.actor not in access.approver_chain(ctx.session, me.aor_id):
        raise Refused("Only an FRO or designee in an AOR's approver chain can delegate.",
                      code=RefusalCode.not_approver)
    if delegate_id == ctx.actor:
        raise Refused("You cannot delegate to yourself.", code=RefusalCode.usage)
    if access.person(ctx.session, delegate_id) is None:
        raise Refused(f"{mention(delegate_id)} is not on the roster.",
                      code=RefusalCode.not_on_roster)
    if until < ctx.today or until > ctx.today + timedelta(days=MAX_DELEGATION_DAYS):
        raise Refused(f"The end date must be between today and {MAX_DELEGATION_DAYS} days from "
                      "now.", code=RefusalCode.usage)
    access.require_training(ctx.session, delegate_id, today=ctx.today,
                            validity_days=ctx.settings.training_validity_days)
    existing = ctx.session.exec(
        select(Delegation).where(
            Delegation.delegator == ctx.actor,
            col(Delegation.until) >= ctx.today,
        )
    ).all()
    for old in existing:  # one delegation per delegator at a time: the newest wins
        old.until = ctx.today - timedelta(days=1)
        ctx.session.add(old)
    ctx.session.add(Delegation(aor_id=me.aor_id, delegator=ctx.actor, delegate=delegate_id,
                               until=until, created_at=ctx.now))
    ctx.state("delegation.created", aor=me.aor_id, delegate=delegate_id, until=until)
    return Outcome(private=[Message(
        title="Delegation recorded",
        text=f"{mention(delegate_id)} may decide approvals for AOR {me.aor_id} on your behalf "
        f"through {until.isoformat()}.",
        section="§4.2",
    )])


def home(ctx: Ctx) -> Outcome:
    """A person's overview (Slack App Home): open cases by stage, approvals waiting for them,
    their outstanding USNCB requests. Ids, stages and dates only."""
    access.require_person(ctx.session, ctx.actor)
    mine = ctx.session.exec(
        select(Case).where(Case.officer == ctx.actor, col(Case.stage) != Stage.closed)
        .order_by(col(Case.stage), col(Case.opened_at))
    ).all()
    by_stage: dict[str, list[str]] = {}
    for case in mine:
        by_stage.setdefault(labels.STAGE_LABELS.get(case.stage, case.stage), []).append(case.id)
    cases = Message(
        title="My open cases",
        text="\n".join(f"*{stage}*: {', '.join(ids)}" for stage, ids in by_stage.items())
        or "No open cases.",
        actions=tuple(Action(f"Show {c.id}", ActionValue(ActionId.show_case, c.id))
                      for c in mine[:20]),
    )
    waiting = ctx.session.exec(
        select(Approval).where(Approval.routed_to == ctx.actor,
                               Approval.status == ApprovalStatus.pending)
        .order_by(col(Approval.requested_at))
    ).all()
    approvals = [Message(
        title=f"Waiting for you: {a.case_id}",
        text=f"{a.kind.replace('_', ' ')} approval requested by {mention(a.requested_by)} on "
        f"{a.requested_at.date().isoformat()}.",
        actions=buttons.decision_actions(a),
    ) for a in waiting[:20]] or [Message(title="Approvals waiting for me", text="None.")]
    outstanding = ctx.session.exec(
        select(UsncbRequest).join(Case, col(Case.id) == col(UsncbRequest.case_id))
        .where(Case.officer == ctx.actor, col(UsncbRequest.answer).is_(None),
               UsncbRequest.status == RequestStatus.sent, col(Case.stage) != Stage.closed)
        .order_by(col(UsncbRequest.sent_on))
    ).all()
    requests = Message(
        title="My outstanding USNCB requests",
        text="\n".join(f"{r.case_id}: {r.kind.replace('_', ' ')} requested {r.sent_on}, "
                       f"{(ctx.today - r.sent_on).days} days ago"
                       + (" — NOT DELIVERED" if r.delivery == "failed" else "")
                       for r in outstanding)
        or "None.",
    )
    ctx.record("read", "home.viewed")
    return Outcome(private=[cases, *approvals, requests])

