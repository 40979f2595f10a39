"""Disposition (§6): list what a schedule makes eligible, and dispose of it on a records
officer's approval. Content is deleted; the chain keeps a verifiable tombstone (the entry with
its digest) and a disposition log row says what went, under which authority, approved by whom.

Nothing under a hold, nothing unscheduled and nothing not yet eligible is ever disposed of,
even when asked for by name (R8): `dispose` recomputes eligibility itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from bot.core.context import Ctx
from bot.core.errors import Refused
from bot.messages import RefusalCode
from bot.records.holds import active_holds, holds_case, holds_entry, require_records_officer
from bot.records.retention import RecordType, Schedule
from storage import record
from storage.models import (
    Case,
    DispositionLog,
    RecordEntry,
    RecordPayload,
    Stage,
    TrainingCompletion,
    UsncbRequest,
)
from storage.sealed import SEALED


@dataclass(frozen=True)
class Eligible:
    record_type: RecordType
    record_ref: str  # case id, "entry:SEQ" or "training:ID"
    eligible_on: date
    item: str
    authority: str


def eligible(ctx: Ctx, schedule: Schedule) -> list[Eligible]:
    """Everything the schedule allows to be destroyed today, holds excluded."""
    holds = active_holds(ctx)
    found: list[Eligible] = []
    item = schedule.item_for(RecordType.case_file)
    if item is not None:
        cases = ctx.session.exec(
            select(Case).where(Case.stage == Stage.closed, col(Case.disposed_at).is_(None))
            .order_by(col(Case.closed_at))
        ).all()
        for case in cases:
            assert case.closed_at is not None
            when = item.eligible_on(case.closed_at.date())
            if when <= ctx.today and not any(holds_case(h, case) for h in holds):
                found.append(Eligible(RecordType.case_file, case.id, when, item.item,
                                      item.authority))
    item = schedule.item_for(RecordType.interaction)
    if item is not None:
        rows = ctx.session.exec(
            select(RecordEntry.seq, RecordEntry.actor, RecordEntry.at)
            .join(RecordPayload, col(RecordPayload.seq) == col(RecordEntry.seq))
            .where(col(RecordEntry.case_id).is_(None)).order_by(col(RecordEntry.seq))
        ).all()
        for seq, actor, at in rows:
            when = item.eligible_on(at.date())
            if when <= ctx.today and not any(holds_entry(h, actor=actor, at=at) for h in holds):
                found.append(Eligible(RecordType.interaction, f"entry:{seq}", when, item.item,
                                      item.authority))
    item = schedule.item_for(RecordType.training)
    if item is not None:
        latest = dict(ctx.session.exec(
            select(TrainingCompletion.user_id, func.max(TrainingCompletion.completed_on))
            .group_by(col(TrainingCompletion.user_id))
        ).all())
        for completion in ctx.session.exec(select(TrainingCompletion)
                                           .order_by(col(TrainingCompletion.id))).all():
            when = item.eligible_on(completion.completed_on)
            if (completion.completed_on != latest.get(completion.user_id) and when <= ctx.today
                    and not any(holds_entry(h, actor=completion.user_id, at=completion.recorded_at)
                                for h in holds)):
                found.append(Eligible(RecordType.training, f"training:{completion.id}", when,
                                      item.item, item.authority))
    return found


def dispose(ctx: Ctx, schedule: Schedule, refs: list[str] | None = None) -> list[DispositionLog]:
    """Dispose of the eligible records named in `refs` (all eligible ones if None)."""
    require_records_officer(ctx)
    candidates = {e.record_ref: e for e in eligible(ctx, schedule)}
    wanted = list(candidates) if refs is None else refs
    refused = [ref for ref in wanted if ref not in candidates]
    if refused:
        raise Refused(
            "Not eligible for disposition (held, unscheduled, not yet due, already disposed "
            f"or unknown): {', '.join(refused)}. Nothing was disposed of.",
            code=RefusalCode.not_eligible)
    logs = []
    for ref in wanted:
        item = candidates[ref]
        affected = _destroy(ctx, item)
        log = DispositionLog(record_type=item.record_type.value, record_ref=ref,
                             schedule_item=item.item, authority=item.authority,
                             eligible_on=item.eligible_on, disposed_on=ctx.today,
                             approved_by=ctx.actor, entries_affected=affected)
        ctx.session.add(log)
        ctx.session.flush()
        ctx.state(record.DISPOSED_ACTION, case_id=ref if item.record_type is RecordType.case_file
                  else None, record_type=item.record_type.value, record=ref,
                  schedule_item=item.item, authority=item.authority,
                  eligible_on=item.eligible_on, log_id=log.id, entries_affected=affected)
        logs.append(log)
    return logs


def _destroy(ctx: Ctx, item: Eligible) -> int:
    session = ctx.session
    if item.record_type is RecordType.interaction:
        seq = int(item.record_ref.removeprefix("entry:"))
        return int(session.execute(  # type: ignore[attr-defined]
            delete(RecordPayload).where(col(RecordPayload.seq) == seq)).rowcount)
    if item.record_type is RecordType.training:
        ident = int(item.record_ref.removeprefix("training:"))
        session.execute(delete(TrainingCompletion).where(col(TrainingCompletion.id) == ident))
        return 0
    case = session.get(Case, item.record_ref, with_for_update=True)
    assert case is not None
    seqs = select(RecordEntry.seq).where(RecordEntry.case_id == case.id)
    removed = int(session.execute(  # type: ignore[attr-defined]
        delete(RecordPayload).where(col(RecordPayload.seq).in_(seqs))).rowcount)
    for table in SEALED:
        if table.model is Case:  # the locked row itself, so the session's copy agrees
            for name, left in table.columns.items():
                setattr(case, name, left)
            continue
        session.execute(update(table.model).where(table.of_case(case.id))
                        .values(**table.columns))
    case.disposed_at = ctx.now
    session.add(case)
    session.execute(update(UsncbRequest).where(col(UsncbRequest.case_id) == case.id)
                    .values(details={}, answer_details={}))
    return removed


def statements(session: Session, entries: list[tuple[int, str | None]]) -> dict[int, str]:
    """seq → "content disposed of under <item>, <date>, by <approver>" for disposed entries
    (seq, case id), from the disposition log: the entry on its own, or its whole case file."""
    if not entries:
        return {}
    refs = {f"entry:{seq}" for seq, _ in entries} | {case for _, case in entries if case}
    logs = {log.record_ref: log for log in session.exec(
        select(DispositionLog).where(col(DispositionLog.record_ref).in_(refs)))}
    found: dict[int, str] = {}
    for seq, case_id in entries:
        log = logs.get(f"entry:{seq}") or (logs.get(case_id) if case_id else None)
        if log is not None:
            found[seq] = (f"content disposed of under {log.schedule_item}, "
                          f"{log.disposed_on.isoformat()}, by {log.approved_by}")
    return found
