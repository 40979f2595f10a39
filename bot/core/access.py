"""Who may do what: roles, training currency (§5.3), approver chains and delegations (§4.2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session, col, func, select

from bot.core.context import Ctx, current_origin
from bot.core.errors import Refused
from bot.messages import RefusalCode, mention
from storage.models import (
    AorApprover,
    AorManager,
    Case,
    Delegation,
    Person,
    PersonRole,
    Role,
    TrainingCompletion,
)


def person(session: Session, user_id: str) -> Person | None:
    found = session.get(Person, user_id)
    return found if found is not None and found.active else None


def roles_of(session: Session, user_id: str) -> set[str]:
    rows = session.exec(select(PersonRole.role).where(PersonRole.user_id == user_id)).all()
    return set(rows)


def require_person(session: Session, user_id: str) -> Person:
    found = person(session, user_id)
    if found is None:
        raise Refused(
            "You are not on the noticebot roster; ask an admin to add you.",
            code=RefusalCode.not_on_roster
        )
    return found


def require_role(session: Session, user_id: str, *roles: Role) -> None:
    if not roles_of(session, user_id) & {r.value for r in roles}:
        wanted = " or ".join(r.value for r in roles)
        raise Refused(f"This needs the {wanted} role.", code=RefusalCode.role)


def officer_present(session: Session, case: Case) -> bool:
    """Whether the case's officer is still an active officer on the roster."""
    return (person(session, case.officer) is not None
            and Role.officer.value in roles_of(session, case.officer))


@dataclass(frozen=True)
class TrainingStatus:
    last_completed: date | None
    expires_on: date | None
    current: bool

    def describe(self) -> str:
        if self.last_completed is None:
            return "no completion of the mandatory INTERPOL training is on record"
        state = "current" if self.current else "EXPIRED"
        return (
            f"last completed {self.last_completed.isoformat()}, "
            f"{state} (valid through {self.expires_on.isoformat() if self.expires_on else '-'})"
        )


def training_status(
    session: Session, user_id: str, *, today: date, validity_days: int
) -> TrainingStatus:
    last = session.exec(
        select(func.max(TrainingCompletion.completed_on)).where(
            TrainingCompletion.user_id == user_id
        )
    ).one()
    if last is None:
        return TrainingStatus(None, None, False)
    expires = last + timedelta(days=validity_days)
    return TrainingStatus(last, expires, last <= today < expires)


def require_training(session: Session, user_id: str, *, today: date, validity_days: int) -> None:
    status = training_status(session, user_id, today=today, validity_days=validity_days)
    if not status.current:
        raise Refused(
            "§5.3: the mandatory INTERPOL notice training must be completed within the last "
            f"{validity_days} days before a notice may be used; {status.describe()}.",
            code=RefusalCode.training,
        )


def approver_chain(session: Session, aor_id: str) -> list[str]:
    """The AOR's FRO first, then designees, as the roster lists them (active people only)."""
    rows = session.exec(
        select(AorApprover.user_id)
        .join(Person, col(Person.user_id) == col(AorApprover.user_id))
        .where(AorApprover.aor_id == aor_id, col(Person.active).is_(True))
        .order_by(col(AorApprover.position))
    ).all()
    return list(rows)


def active_delegations(session: Session, aor_id: str, *, today: date) -> list[Delegation]:
    """Delegations in force: not past their end, and both the delegator and the delegate still
    active on the roster (a delegation ends when either leaves it, §4.2)."""
    # People still active, as a subquery: two aliased joins to `person` say the same, but
    # building the aliases costs more than the query itself, on every approver check.
    active = select(Person.user_id).where(col(Person.active).is_(True))
    return list(
        session.exec(
            select(Delegation)
            .where(Delegation.aor_id == aor_id, col(Delegation.until) >= today,
                   col(Delegation.delegator).in_(active), col(Delegation.delegate).in_(active))
            .order_by(col(Delegation.id))
        ).all()
    )


def route_approval(session: Session, case: Case, *, today: date) -> str:
    """Whom an approval request goes to: the first approver in the chain who is not the
    requester; if that approver has delegated, their delegate."""
    for approver in approver_chain(session, case.aor_id):
        if approver == case.officer:
            continue
        for delegation in active_delegations(session, case.aor_id, today=today):
            if delegation.delegator == approver and delegation.delegate != case.officer:
                return delegation.delegate
        return approver
    raise Refused(
        f"AOR {case.aor_id} has no approver other than the requester; an admin must add an FRO "
        "or designee to the roster.",
        code=RefusalCode.no_approver,
    )


def may_approve(session: Session, case: Case, user_id: str, *, today: date) -> bool:
    """FRO or designee of the case's AOR, or their current delegate; never the requester."""
    if user_id == case.officer:
        return False
    chain = approver_chain(session, case.aor_id)
    if user_id in chain:
        return Role.supervisor.value in roles_of(session, user_id)
    return any(
        d.delegate == user_id and d.delegator in chain
        for d in active_delegations(session, case.aor_id, today=today)
    )


def require_approver(session: Session, case: Case, user_id: str, *, today: date) -> None:
    if user_id == case.officer:
        raise Refused(
            "§2.1: the requester can never approve their own case.", code=RefusalCode.self_approval
        )
    if not may_approve(session, case, user_id, today=today):
        raise Refused(
            f"Only the FRO or a designee of AOR {case.aor_id} may decide this.",
            code=RefusalCode.not_approver,
        )


def require_owner(case: Case, user_id: str) -> None:
    if user_id != case.officer:
        raise Refused(
            f"Only the case officer ({mention(case.officer)}) can do this step of {case.id}.",
            code=RefusalCode.not_owner,
        )


def require_owner_or_approver(session: Session, case: Case, user_id: str, *, today: date) -> None:
    if user_id != case.officer and not may_approve(session, case, user_id, today=today):
        raise Refused(
            f"Only the case officer or an approver of AOR {case.aor_id} can do this.",
            code=RefusalCode.not_owner,
        )


def managers_of(session: Session, aor_id: str) -> list[str]:
    return list(
        session.exec(select(AorManager.user_id).where(AorManager.aor_id == aor_id)).all()
    )


def may_view_details(session: Session, case: Case, user_id: str, *, today: date) -> bool:
    """Subject details (§4.3(9)): the officer, the AOR's approvers and managers, OPLA, records."""
    if user_id == case.officer or may_approve(session, case, user_id, today=today):
        return True
    if user_id in managers_of(session, case.aor_id):
        return True
    return bool(roles_of(session, user_id) & {Role.opla.value, Role.records.value})


def require_bound_operator(ctx: Ctx) -> None:
    """With NOTICEBOT_CLI_OPERATORS set, a command-line action taken as a roster user (`--as`)
    must come from an operating-system account bound to that user; a command line cannot
    otherwise prove who is typing."""
    bindings = ctx.settings.cli_operators
    origin = current_origin()
    if not bindings or origin is None:
        return
    account = origin.get("os_user", "")
    if account not in bindings.get(ctx.actor, frozenset()):
        raise Refused(f"The operating-system account {account!r} is not bound to {ctx.actor} "
                      "(NOTICEBOT_CLI_OPERATORS); run the command as your own account.",
                      code=RefusalCode.operator_not_bound)
