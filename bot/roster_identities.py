"""The roster's platform identities of people and channels of AORs, brought to what the file
says. What is implied by a roster from before identities existed (`user` as the Slack id,
`channel` as the Slack channel) is written without a change entry of its own: the person's or
AOR's own entry already records it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import col, delete, select

from bot.core.context import Ctx
from config.platforms import Platform
from storage.models import AorChannel, PersonIdentity

Change = Callable[..., None]  # (action, **payload): records one roster change


def sync_person(ctx: Ctx, change: Change, user_id: str, wanted: dict[Platform, str]) -> None:
    session = ctx.session
    rows = session.exec(select(PersonIdentity).where(PersonIdentity.user_id == user_id)).all()
    current = {row.platform: row.external_id for row in rows}
    target = {platform.value: external for platform, external in wanted.items()}
    if current == target:
        return
    for row in rows:
        if target.get(row.platform) != row.external_id:
            session.delete(row)
    session.flush()
    taken_from = []
    for platform, external in target.items():
        if current.get(Platform(platform)) == external:
            continue
        # The id may still sit with someone who left the roster (never with anyone listed:
        # the file was checked for that): it moves to the person the file names now.
        holder = session.exec(select(PersonIdentity).where(
            PersonIdentity.platform == platform, PersonIdentity.external_id == external)).first()
        if holder is not None:
            taken_from.append(holder.user_id)
            session.delete(holder)
            session.flush()
        session.add(PersonIdentity(user_id=user_id, platform=Platform(platform),
                                   external_id=external))
    session.flush()
    if current or taken_from or target != {Platform.slack.value: user_id}:
        change("identities_changed", user=user_id, identities=target, previous=current,
               **({"taken_from": taken_from} if taken_from else {}))


def sync_aor(ctx: Ctx, change: Change, aor_id: str, wanted: dict[Platform, AorChannel]) -> None:
    session = ctx.session
    rows = {row.platform: row for row in session.exec(
        select(AorChannel).where(AorChannel.aor_id == aor_id)).all()}
    changed: dict[str, Any] = {}
    for platform in Platform:
        have, want = rows.get(platform), wanted.get(platform)
        if have is not None and want is not None and _same(have, want):
            continue
        if have is None and want is None:
            continue
        if have is not None:
            session.execute(delete(AorChannel).where(col(AorChannel.aor_id) == aor_id,
                                                     col(AorChannel.platform) == platform.value))
        if want is not None:
            session.add(want)
        if platform is not Platform.slack:  # the Slack channel is the AOR's own `channel`
            changed[platform.value] = None if want is None else {
                "team": want.team, "channel": want.conversation, "service_url": want.service_url}
    session.flush()
    if changed:
        change("aor_channels_changed", aor=aor_id, channels=changed)


def _same(a: AorChannel, b: AorChannel) -> bool:
    return (a.conversation, a.team, a.service_url) == (b.conversation, b.team, b.service_url)
