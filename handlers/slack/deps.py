"""What every Slack listener is given: its own module, so app.py (which registers the listeners)
and the listener modules do not import each other."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.service import Core
from handlers.slack.work import ContextExecutor


@dataclass(frozen=True)
class SlackDeps:
    core: Core
    work: ContextExecutor  # where a listener hands its work once it has acked
