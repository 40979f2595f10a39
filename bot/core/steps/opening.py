"""Step 0 and the opening of a case (§5.3, §4.2(1)): an officer with current training, in an
AOR, opens a case; it starts at the validity step."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import select

from bot.core import access
from bot.core.context import Ctx
from bot.core.details import seal_case
from bot.core.errors import Refused
from bot.core.forms import check_country
from bot.core.outbox import case_channel, destination_on
from bot.core.transitions import not_future, training
from bot.messages import DestinationKind, RefusalCode
from config.platforms import CHANNEL_ID_SHAPES, Platform
from storage.db import insert_into
from storage.models import (
    Aor,
    Case,
    CaseCounter,
    CaseCreate,
    ChecklistItem,
    IntendedUse,
    NoticeType,
    Person,
    Role,
    Stage,
)

CASE_PREFIX = {NoticeType.red_notice: "RN", NoticeType.diffusion: "WD"}
START = Stage.validity  # every case begins by verifying the notice is active


def check_may_open(ctx: Ctx, *, origin_channel: str) -> tuple[Person, str]:
    """Step 0 (§5.3, §4.2(1)): an officer with current training, in an AOR; and the channel
    the case's checklist will be posted in (opened from `origin_channel`)."""
    officer = access.require_person(ctx.session, ctx.actor)
    access.require_role(ctx.session, ctx.actor, Role.officer)
    training(ctx, ctx.actor)
    if officer.aor_id is None:
        raise Refused("You have no area of responsibility on the roster.", code=RefusalCode.no_aor)
    aor = ctx.session.get(Aor, officer.aor_id)
    channel = case_channel(ctx.session, aor, origin_channel=origin_channel)
    # The checklist is worked in the case's thread: a case whose root could go out on none of
    # this deployment's platforms (a Teams-only AOR without its Teams channel, say) would be
    # opened with nowhere to work it, and nobody told.
    if not any(_posts_to(ctx, platform, channel) for platform in ctx.settings.platforms):
        on = ", ".join(platform.value for platform in ctx.settings.platforms)
        raise Refused(f"Your area of responsibility {officer.aor_id} has no channel on {on} for "
                      "its cases' checklists. Ask an administrator to add one to the roster.",
                      code=RefusalCode.no_channel)
    return officer, channel


def _posts_to(ctx: Ctx, platform: Platform, channel: str) -> bool:
    """Whether a case's root in `channel` goes out on `platform`. Slack takes the core's channel
    ids as its own, so there only one shaped like a Slack channel: an AOR with no channel at all
    falls back to where the case was opened, which may be a Teams conversation."""
    if destination_on(ctx.session, platform, DestinationKind.channel, channel) is None:
        return False
    return platform is not Platform.slack or re.fullmatch(
        CHANNEL_ID_SHAPES[Platform.slack], channel) is not None


def _locked_counter(ctx: Ctx) -> CaseCounter:
    """This year's case counter, row-locked: concurrent openings serialize here."""
    year = ctx.now.year
    # The first case of a year creates the row; racing creators must not collide on it.
    ctx.session.execute(insert_into(ctx.session, CaseCounter).values(year=year, last=0)
                        .on_conflict_do_nothing())
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
    officer, channel = check_may_open(ctx, origin_channel=origin_channel)
    counter = _locked_counter(ctx)  # before the duplicate check, so a racing twin waits here
    if submission_key:
        existing = ctx.session.exec(
            select(Case).where(Case.submission_key == submission_key)
        ).first()
        if existing is not None:
            return existing  # a retried submission: the case exists already (R2)
    country = check_country(values.get("issuing_country"))
    not_future(values, "published_on", today=ctx.today)
    assert officer.aor_id is not None
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
            "channel": channel,
            "opened_at": ctx.now,
            "submission_key": submission_key,
            "stage": START.value,
        },
    )
    seal_case(ctx.vault, case)
    ctx.session.add(case)
    ctx.session.flush()
    ctx.session.add(ChecklistItem(case_id=case.id, step=START.value))
    ctx.state("case.opened", case_id=case.id, aor=case.aor_id, type=case.notice_type,
              intended_use=case.intended_use)
    return case
