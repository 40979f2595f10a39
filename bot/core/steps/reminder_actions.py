"""The buttons on a reminder (§5 of the spec): followed up, or snooze a day. The reminder
itself says whom it was for; the case's stage does not change."""

from __future__ import annotations

from typing import Any

from bot.core import reminders
from bot.core.context import Ctx
from bot.core.steps.base import Act, Step, Who
from bot.messages import ActionId
from storage.models import Case


def followed_up(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    reminders.followed_up(ctx, case, ref)


def snooze(ctx: Ctx, case: Case, values: dict[str, Any], ref: int | None) -> None:
    reminders.snooze(ctx, case, ref)


STEP = Step(
    name="Reminders",
    acts=(
        Act(ActionId.reminder_followed_up, Who.reminded, followed_up),
        Act(ActionId.reminder_snooze, Who.reminded, snooze),
    ),
)
