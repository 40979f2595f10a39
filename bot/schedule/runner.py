"""Each process runs an APScheduler BackgroundScheduler with the in-memory job store; its jobs
are short sweeps over tables (job stores must never be shared between schedulers)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler

from bot.core.context import unit_of_work
from bot.core.service import Core
from bot.ops import metrics
from bot.ops.probes import Readiness
from bot.records.checkpoints import make_checkpoint
from bot.records.heads import publish_head
from bot.schedule import reminders
from bot.schedule.digest import sweep_digests
from bot.schedule.relay_loop import RelayLoop

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
    core.forget_deliveries()
    return SweepReport(sent, digests, core.deliver_usncb())


def start_scheduler(core: Core, *, deliver: Callable[[], object] | None = None,
                    nudge: Callable[[], None] | None = None,
                    deliver_seconds: int = 5,
                    readiness: Readiness | None = None) -> BackgroundScheduler:
    """Start the sweeps (and the outbox relay, if given) in background threads.

    `deliver` runs in its own thread (`RelayLoop`), right after any transaction of this process
    that queued outbox rows commits; the "relay" job wakes it every `deliver_seconds` for rows
    queued elsewhere or due after a back-off; `nudge` (the relay's) wakes a pass lingering in
    `deliver` when new rows arrive. Shutting the scheduler down stops it too. With `readiness`,
    the process is ready only while these threads are alive."""
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(_guarded(lambda: _timed_sweep(core)), "interval",
                      seconds=core.settings.sweep_seconds, id="sweeps")
    if deliver is not None:
        loop = RelayLoop(deliver, engine=core.engine, interval=None, nudge=nudge).start()
        scheduler.add_job(loop.wake, "interval", seconds=deliver_seconds, id="relay")
        scheduler.add_listener(lambda _event: loop.stop(), EVENT_SCHEDULER_SHUTDOWN)
        if readiness is not None:
            readiness.watch("delivery", loop.alive)
    if core.settings.heads_file and core.settings.checkpoint_key_file:
        scheduler.add_job(_guarded(lambda: make_checkpoint(
            engine=core.engine, settings=core.settings, clock=core.clock)), "interval",
            hours=core.settings.heads_hours, id="heads")
    elif core.settings.heads_file:
        scheduler.add_job(_guarded(lambda: publish_head(
            engine=core.engine, settings=core.settings, clock=core.clock,
            target=Path(core.settings.heads_file))), "interval",
            hours=core.settings.heads_hours, id="heads")
    scheduler.start()
    if readiness is not None:
        readiness.watch("sweeps", lambda: bool(scheduler.running))
    return scheduler


def _timed_sweep(core: Core) -> SweepReport:
    with metrics.sweep_timer():
        return sweep_once(core)


def _guarded(job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # a failed sweep is retried by the next tick
            log.exception("scheduled job failed")
    return run
