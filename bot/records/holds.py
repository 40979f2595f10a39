"""Litigation holds (§6): placed and lifted by records officers; a held record is never
disposed of, whatever its schedule."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import col, select

from bot.core import access
from bot.core.context import Ctx
from bot.core.errors import Refused
from bot.messages import RefusalCode
from storage.models import Aor, Case, LitigationHold, Person, Role


def require_records_officer(ctx: Ctx) -> None:
    access.require_person(ctx.session, ctx.actor)
    access.require_role(ctx.session, ctx.actor, Role.records)


def place_hold(ctx: Ctx, *, matter: str, authority: str, reason: str,
               case_id: str | None = None, aor_id: str | None = None,
               person: str | None = None, date_from: date | None = None,
               date_to: date | None = None) -> LitigationHold:
    require_records_officer(ctx)
    if not (matter.strip() and authority.strip() and reason.strip()):
        raise Refused("A hold needs a matter name, an authority and a reason.",
                      code=RefusalCode.usage)
    if not any((case_id, aor_id, person, date_from, date_to)):
        raise Refused("Say what the hold covers: a case, an AOR, a person or a date range.",
                      code=RefusalCode.usage)
    if date_from and date_to and date_to < date_from:
        raise Refused("The hold's end date is before its start date.", code=RefusalCode.usage)
    if case_id and ctx.session.get(Case, case_id) is None:
        raise Refused(f"There is no case {case_id}.", code=RefusalCode.no_case)
    if aor_id and ctx.session.get(Aor, aor_id) is None:
        raise Refused(f"There is no AOR {aor_id}.", code=RefusalCode.usage)
    if person and ctx.session.get(Person, person) is None:
        raise Refused(f"{person} is not on the roster.", code=RefusalCode.usage)
    hold = LitigationHold(matter=matter.strip(), authority=authority.strip(),
                          reason=reason.strip(), case_id=case_id, aor_id=aor_id, person=person,
                          date_from=date_from, date_to=date_to, placed_by=ctx.actor,
                          placed_at=ctx.now)
    ctx.session.add(hold)
    ctx.session.flush()
    ctx.state("records.hold_placed", case_id=case_id, hold_id=hold.id, matter=hold.matter,
              authority=hold.authority, aor=aor_id, person=person, date_from=date_from,
              date_to=date_to)
    return hold


def lift_hold(ctx: Ctx, hold_id: int, *, reason: str) -> LitigationHold:
    require_records_officer(ctx)
    hold = ctx.session.get(LitigationHold, hold_id, with_for_update=True)
    if hold is None:
        raise Refused(f"There is no hold {hold_id}.", code=RefusalCode.usage)
    if hold.lifted_at is not None:
        raise Refused(f"Hold {hold_id} was already lifted.", code=RefusalCode.duplicate)
    if not reason.strip():
        raise Refused("Lifting a hold needs a reason.", code=RefusalCode.usage)
    hold.lifted_by, hold.lifted_at, hold.lift_reason = ctx.actor, ctx.now, reason.strip()
    ctx.session.add(hold)
    ctx.state("records.hold_lifted", case_id=hold.case_id, hold_id=hold.id, reason=reason)
    return hold


def active_holds(ctx: Ctx) -> list[LitigationHold]:
    return list(ctx.session.exec(
        select(LitigationHold).where(col(LitigationHold.lifted_at).is_(None))
        .order_by(col(LitigationHold.id))
    ).all())


def _in_range(hold: LitigationHold, moment: datetime | None) -> bool:
    if hold.date_from is None and hold.date_to is None:
        return True
    if moment is None:
        return False
    day = moment.date()
    return (hold.date_from is None or day >= hold.date_from) and (
        hold.date_to is None or day <= hold.date_to)


def holds_case(hold: LitigationHold, case: Case) -> bool:
    """Every criterion the hold names must match the case (dates: when it was opened)."""
    return ((hold.case_id is None or hold.case_id == case.id)
            and (hold.aor_id is None or hold.aor_id == case.aor_id)
            and (hold.person is None or hold.person == case.officer)
            and _in_range(hold, case.opened_at))


def holds_entry(hold: LitigationHold, *, actor: str, at: datetime) -> bool:
    """A hold reaches entries not tied to a case only through its person and dates."""
    if hold.case_id is not None or hold.aor_id is not None:
        return False
    return (hold.person is None or hold.person == actor) and _in_range(hold, at)
