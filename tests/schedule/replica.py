"""A bot replica for the multi-process runs (tests and bench): it runs the sweeps at each
simulated moment the driver publishes in a control file, then acknowledges the step. Usage:
    python -m tests.schedule.replica DATABASE_URL CONTROL_DIR NAME ENCRYPTION_KEY
`Replicas` starts several and walks them through time together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from bot.app import build_core
from bot.clock import ManualClock
from bot.schedule.runner import sweep_once
from config.settings import Settings


def publish(control: Path, payload: dict[str, object]) -> None:
    """Tell the replicas the next simulated moment (or {"stop": True})."""
    partial = control / "step.partial"
    partial.write_text(json.dumps(payload))
    partial.replace(control / "step.json")  # atomic: a replica never reads half a step


class Replicas:
    """`count` replica processes on one database, moved through simulated time in lockstep."""

    def __init__(self, url: str, control: Path, key: str, *, count: int = 3) -> None:
        self.control, self.step = control, 0
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        self.names = [f"r{i}" for i in range(count)]
        self.processes = [subprocess.Popen(
            [sys.executable, "-m", "tests.schedule.replica", url, str(control), name, key],
            env=env) for name in self.names]

    def at(self, moment: datetime, *, timeout: float = 30) -> None:
        """Every replica sweeps once at `moment`; returns when all have."""
        publish(self.control, {"n": self.step, "now": moment.isoformat()})
        deadline = time.monotonic() + timeout
        while not all((self.control / f"ack-{n}-{self.step}").exists() for n in self.names):
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas stalled at step {self.step}")
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError("a replica died")
            time.sleep(0.002)
        self.step += 1

    def stop(self) -> None:
        publish(self.control, {"stop": True})
        for process in self.processes:
            if process.wait(timeout=30) != 0:
                raise RuntimeError("a replica failed")

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def main(url: str, control: Path, name: str, key: str) -> None:
    settings = Settings(_env_file=None, database_url=url,
                        encryption_keys=(key,))
    clock = ManualClock(datetime.fromisoformat("2026-01-01T00:00:00+00:00"))
    core = build_core(settings, clock=clock, migrate=False)
    seen = -1
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            step = json.loads((control / "step.json").read_text())
        except (FileNotFoundError, ValueError):
            time.sleep(0.005)
            continue
        if step.get("stop"):
            break
        if step["n"] != seen:
            seen = step["n"]
            clock.set(datetime.fromisoformat(step["now"]))
            sweep_once(core)
            (control / f"ack-{name}-{seen}").touch()
        time.sleep(0.002)
    core.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4])
