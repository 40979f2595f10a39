"""Prometheus metrics, on `/metrics` of every process.

Two kinds:
- events counted where they happen (interactions, refusals, Slack sends, dead letters, USNCB
  deliveries, sweep durations): in-process counters and histograms. Under gunicorn's workers
  they are kept in multiprocess files (`enable_multiprocess`), so a scrape of any worker adds
  up all of them;
- the state of the queues (outbox depth and age, dead letters, approvals waiting and their age,
  webhook requests waiting): read from the database at scrape time, so every replica reports the
  same, true values whichever one is scraped.

The metric objects are built on first use, not at import: `enable_multiprocess` must be able to
switch the value store before any is made (gunicorn's master does it before forking).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.clock import Clock
from config.platforms import Platform
from storage.models import (
    Approval,
    ApprovalStatus,
    Delivery,
    OutboxMessage,
    OutboxStatus,
    UsncbRequest,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SWEEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass(frozen=True)
class _Metrics:
    interactions: Counter
    refusals: Counter
    sends: Counter
    dead_letters: Counter
    usncb: Counter
    sweep_seconds: Histogram
    sweep_last_success: Gauge


_lock = threading.Lock()
_metrics: _Metrics | None = None


def enable_multiprocess(directory: Path | None = None) -> Path:
    """Keep metric values in files under `directory` (PROMETHEUS_MULTIPROC_DIR, or a fresh
    temporary folder), shared by the processes forked after this call. Call before any metric
    is used; stale files from an earlier run are removed."""
    with _lock:
        if _metrics is not None:
            raise RuntimeError("metrics were used before multiprocess mode was enabled")
        chosen = directory or Path(os.environ.get(MULTIPROC_ENV) or "")
        if not str(chosen) or str(chosen) == ".":
            import tempfile

            chosen = Path(tempfile.mkdtemp(prefix="noticebot-metrics-"))
        chosen.mkdir(parents=True, exist_ok=True)
        for stale in chosen.glob("*.db"):
            stale.unlink()
        os.environ[MULTIPROC_ENV] = str(chosen)
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        return chosen


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def process_exited(pid: int) -> None:
    """A gunicorn worker died: its live gauges no longer count (counters are kept)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def remove_multiprocess_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def _get() -> _Metrics:
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = _Metrics(
                interactions=Counter(
                    "noticebot_interactions", "Interactions handled by the core.",
                    ["kind", "outcome"]),
                refusals=Counter(
                    "noticebot_refusals", "Interactions refused (who may not, or bad input).",
                    ["kind", "code"]),
                sends=Counter(
                    "noticebot_sends", "Outbox messages sent to a chat platform, by result.",
                    ["platform", "result"]),
                dead_letters=Counter(
                    "noticebot_dead_letters", "Outbox messages given up on (dead-lettered).",
                    ["platform"]),
                usncb=Counter(
                    "noticebot_usncb_deliveries", "USNCB webhook deliveries, by result.",
                    ["result"]),
                sweep_seconds=Histogram(
                    "noticebot_sweep_duration_seconds", "How long one sweep pass took.",
                    buckets=SWEEP_BUCKETS),
                sweep_last_success=Gauge(
                    "noticebot_sweep_last_success_timestamp_seconds",
                    "When a sweep pass last finished without error (Unix time).",
                    multiprocess_mode="max"),
            )
        return _metrics


# --- events ------------------------------------------------------------------------------------

def interaction(kind: str, outcome: str, code: str | None = None) -> None:
    metrics = _get()
    metrics.interactions.labels(kind=kind, outcome=outcome).inc()
    if outcome != "ok":
        metrics.refusals.labels(kind=kind, code=code or outcome).inc()


def sent(platform: str, result: str) -> None:
    _get().sends.labels(platform=platform, result=result).inc()
    if result == "dead":
        _get().dead_letters.labels(platform=platform).inc()


def usncb_delivery(delivered: bool) -> None:
    _get().usncb.labels(result="delivered" if delivered else "failed").inc()


@contextmanager
def sweep_timer() -> Iterator[None]:
    """Times one sweep pass; a pass that raises is timed but not counted as a success."""
    metrics, started = _get(), time.perf_counter()
    try:
        yield
    finally:
        metrics.sweep_seconds.observe(time.perf_counter() - started)
    metrics.sweep_last_success.set(time.time())


# --- state, read at scrape time ------------------------------------------------------------------

_UNDELIVERED = (Delivery.pending.value, Delivery.sending.value, Delivery.failed.value)


class DatabaseCollector(Collector):
    """Queue depths and ages from the database (the same on every replica)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Any]:
        now = self.clock.now()
        depth = GaugeMetricFamily("noticebot_outbox_depth",
                                  "Outbox messages not yet delivered (pending or sending).",
                                  labels=["platform"])
        age = GaugeMetricFamily("noticebot_outbox_oldest_age_seconds",
                                "Age of the oldest undelivered outbox message.",
                                labels=["platform"])
        dead = GaugeMetricFamily("noticebot_outbox_dead",
                                 "Outbox messages dead-lettered (total in the database).",
                                 labels=["platform"])
        approvals = GaugeMetricFamily("noticebot_approvals_waiting",
                                      "Approvals requested and not yet decided.")
        approvals_age = GaugeMetricFamily(
            "noticebot_approvals_oldest_age_seconds",
            "How long the oldest undecided approval has waited.")
        usncb = GaugeMetricFamily("noticebot_usncb_undelivered",
                                  "USNCB webhook requests waiting or failed, by state.",
                                  labels=["state"])
        up = GaugeMetricFamily("noticebot_database_up",
                               "1 if the database answered this scrape's queries.")
        try:
            with Session(self.engine) as session:
                # Each platform's queue apart: a stuck Teams relay must not hide behind a
                # healthy Slack one (the index on platform and status serves both).
                undelivered = {str(platform): (int(count), oldest) for platform, count, oldest
                               in session.execute(
                    select(col(OutboxMessage.platform), func.count(),
                           func.min(OutboxMessage.created_at))
                    .where(col(OutboxMessage.status).in_(
                        (OutboxStatus.pending.value, OutboxStatus.sending.value)))
                    .group_by(col(OutboxMessage.platform))).all()}
                dead_counts = {str(platform): int(count) for platform, count in session.execute(
                    select(col(OutboxMessage.platform), func.count())
                    .where(col(OutboxMessage.status) == OutboxStatus.dead.value)
                    .group_by(col(OutboxMessage.platform))).all()}
                waiting, since = session.execute(
                    select(func.count(), func.min(Approval.requested_at))
                    .where(col(Approval.status) == ApprovalStatus.pending.value)
                ).one()
                states: dict[str, int] = {
                    str(state): int(count) for state, count in session.execute(
                        select(col(UsncbRequest.delivery), func.count())
                        .where(col(UsncbRequest.delivery).in_(_UNDELIVERED))
                        .group_by(col(UsncbRequest.delivery))
                    ).all()}
        except Exception:  # a scrape reports the database as down instead of failing
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for platform in Platform:  # every platform listed, so a rule sees 0, not nothing
            pending, oldest = undelivered.get(platform.value, (0, None))
            depth.add_metric([platform.value], pending)
            age.add_metric([platform.value], _age(now, oldest))
            dead.add_metric([platform.value], dead_counts.get(platform.value, 0))
        approvals.add_metric([], waiting)
        approvals_age.add_metric([], _age(now, since))
        for state in _UNDELIVERED:
            usncb.add_metric([state], states.get(state, 0))
        yield from (up, depth, age, dead, approvals, approvals_age, usncb)


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=now.tzinfo)
    return max((now - then).total_seconds(), 0.0)


def exposition(engine: Engine | None = None, clock: Clock | None = None) -> bytes:
    """The text a scrape gets: this process's (or all workers') events, and the database's
    queues when an engine is given."""
    _get()  # every series is listed from the first scrape, before anything happened
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    if engine is not None and clock is not None:
        extra = CollectorRegistry(auto_describe=False)
        extra.register(DatabaseCollector(engine, clock))
        text += generate_latest(extra)
    return text
