"""Each process runs an APScheduler BackgroundScheduler with the in-memory job store; its jobs
are short sweeps over tables (NOTES: job stores must never be shared between schedulers)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from bot.core.context import unit_of_work
from bot.core.service import Core
from bot.records.heads import publish_head
from bot.schedule import reminders
from bot.schedule.digest import sweep_digests

log = logging.getLogger(__name__)
SYSTEM_ACTOR = "noticebot:scheduler"


@dataclass(frozen=True)
class SweepReport:
    reminders: int
    digests: int
    usncb_delivered: int


def sweep_once(core: Core) -> SweepReport:
    """One pass over all due work. Safe to run in any number of processes at once."""
    with unit_of_work(core.engine, clock=core.clock, settings=core.settings,
                      actor=SYSTEM_ACTOR) as ctx:
        sent = reminders.sweep(ctx)
    digests = sweep_digests(engine=core.engine, clock=core.clock, settings=core.settings)
    return SweepReport(sent, digests, core.deliver_usncb())


def start_scheduler(core: Core, *, deliver: Callable[[], object] | None = None,
                    deliver_seconds: int = 5) -> BackgroundScheduler:
    """Start the sweeps (and the outbox relay, if given) in background threads."""
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(_guarded(lambda: sweep_once(core)), "interval",
                      seconds=core.settings.sweep_seconds, id="sweeps")
    if deliver is not None:
        scheduler.add_job(_guarded(deliver), "interval", seconds=deliver_seconds, id="relay")
    if core.settings.heads_file:
        scheduler.add_job(_guarded(lambda: publish_head(
            engine=core.engine, settings=core.settings, clock=core.clock,
            target=Path(core.settings.heads_file))), "interval",
            hours=core.settings.heads_hours, id="heads")
    scheduler.start()
    return scheduler


def _guarded(job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # a failed sweep is retried by the next tick
            log.exception("scheduled job failed")
    return run
