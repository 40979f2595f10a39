"""What every benchmark shares: where it runs (fresh databases, a scratch folder), what it
reports (`Result`), and how the run is summed up (a table and `bench/results.json`)."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

from config.settings import Settings

# A fixed key so runs are repeatable; benchmarks encrypt like production does.
BENCH_KEY = "lN0b2mE0QHk0dFf9qfXc3l2wM6Y7a1p4R5s8u9v0x2A="


@dataclass
class Result:
    """One measured line of the report. `ok` is None where the run was too small to judge the
    target (quick mode) or the line has no target of its own."""

    id: str
    name: str
    value: float
    unit: str
    target: str
    ok: bool | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Bench:
    quick: bool
    workdir: Path
    postgres_url: str | None = None

    def kinds(self) -> list[str]:
        return ["sqlite", "postgresql"] if self.postgres_url else ["sqlite"]

    @contextmanager
    def database(self, kind: str) -> Iterator[str]:
        """A fresh, empty database URL of `kind`: a new SQLite file, or a new PostgreSQL schema
        dropped afterwards."""
        if kind == "sqlite":
            path = self.workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
            yield f"sqlite:///{path}"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        assert self.postgres_url, "no PostgreSQL URL given"
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in self.postgres_url else "?"
        try:
            yield f"{self.postgres_url}{separator}options={quote(f'-csearch_path={schema}')}"
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    def settings(self, database_url: str, **overrides: Any) -> Settings:
        return Settings(_env_file=None, database_url=database_url,
                        encryption_keys=(BENCH_KEY,), **overrides)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), interpolated; what p50/p95/p99 mean in the report."""
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1])


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as took:` … `took[0]` is the elapsed seconds afterwards."""
    took: list[float] = []
    start = time.perf_counter()
    try:
        yield took
    finally:
        took.append(time.perf_counter() - start)


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process now (from /proc), in MB; of this process by default."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), "0")
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gb": round(int(memory) / 2**20, 1),
            "python": platform.python_version(), "system": platform.platform(),
            "commit": commit}


def table(results: Sequence[Result]) -> str:
    rows = [("id", "measured", "value", "target", "met")]
    for r in results:
        met = "—" if r.ok is None else ("yes" if r.ok else "NO")
        rows.append((r.id, r.name, f"{r.value:,.4g} {r.unit}".strip(), r.target, met))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
