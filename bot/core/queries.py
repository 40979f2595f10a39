"""Reads of a case's state that steps, prompts and sweeps share, and the dated no-response
entry that both officers and reminders write. It imports no step and no sweep, so the
scheduler can use it without a cycle."""

from __future__ import annotations

from sqlmodel import col, select

from bot.core.context import Ctx
from storage.models import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    ChecklistItem,
    DoubtStep,
    IntendedUse,
    RequestKind,
    ReviewOutcome,
    UsncbNoResponse,
    UsncbRequest,
)


def checklist(ctx: Ctx, case_id: str) -> dict[str, ChecklistItem]:
    items = ctx.session.exec(select(ChecklistItem).where(ChecklistItem.case_id == case_id)).all()
    return {item.step: item for item in items}


def latest_request(ctx: Ctx, case_id: str, kind: RequestKind) -> UsncbRequest | None:
    return ctx.session.exec(
        select(UsncbRequest)
        .where(UsncbRequest.case_id == case_id, UsncbRequest.kind == kind)
        .order_by(col(UsncbRequest.id).desc())
        .limit(1)
    ).first()


def no_responses(ctx: Ctx, request_id: int) -> list[UsncbNoResponse]:
    return list(
        ctx.session.exec(
            select(UsncbNoResponse)
            .where(UsncbNoResponse.request_id == request_id)
            .order_by(col(UsncbNoResponse.as_of))
        ).all()
    )


def covers(purpose: str | None, use: str) -> bool:
    """Whether a use authorization requested for `purpose` covers the intended `use`."""
    return purpose == use or purpose == IntendedUse.both


def covering_use_request(ctx: Ctx, case: Case) -> UsncbRequest | None:
    """The latest use authorization request, if it covers the case's intended use now; a
    request for another use does not count (the intended use governs, §5.1(5))."""
    request = latest_request(ctx, case.id, RequestKind.use_authorization)
    if request is None or not covers(request.details.get("purpose"), case.intended_use):
        return None
    return request


def pending_approval(ctx: Ctx, case_id: str, kind: ApprovalKind) -> Approval | None:
    return ctx.session.exec(
        select(Approval).where(
            Approval.case_id == case_id,
            Approval.kind == kind,
            Approval.status == ApprovalStatus.pending,
        )
    ).first()


def approved(ctx: Ctx, case: Case) -> bool:
    """Whether the latest supervisory approval stands (a later round needs its own)."""
    latest = ctx.session.exec(
        select(Approval).where(Approval.case_id == case.id, Approval.kind == ApprovalKind.use)
        .order_by(col(Approval.id).desc()).limit(1)
    ).first()
    return latest is not None and latest.status == ApprovalStatus.approved


def returned_before(ctx: Ctx, case: Case) -> bool:
    return ctx.session.exec(select(Approval.id).where(
        Approval.case_id == case.id, Approval.status == ApprovalStatus.returned)).first() \
        is not None


def doubt_done(ctx: Ctx, case: Case) -> set[str]:
    """The §5.2 steps recorded in the case's current round of doubt."""
    rows = ctx.session.exec(select(DoubtStep.kind).where(
        DoubtStep.case_id == case.id, DoubtStep.doubt_round == case.doubt_round)).all()
    return set(rows)


def indications_exist(case: Case) -> bool:
    return case.review_outcome in (ReviewOutcome.doubt.value, ReviewOutcome.misuse.value)


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
