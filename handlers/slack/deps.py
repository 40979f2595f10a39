"""What every Slack listener is given: its own module, so app.py (which registers the listeners)
and the listener modules do not import each other."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.service import Core


@dataclass(frozen=True)
class SlackDeps:
    core: Core
