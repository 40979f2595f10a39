"""A bot replica for the multi-process test: it runs the sweeps at each simulated moment the
test publishes in a control file, then acknowledges the step. Usage:
    python -m tests.schedule.replica DATABASE_URL CONTROL_DIR NAME ENCRYPTION_KEY
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from bot.app import build_core
from bot.clock import ManualClock
from bot.schedule.runner import sweep_once
from config.settings import Settings


def main(url: str, control: Path, name: str, key: str) -> None:
    settings = Settings(_env_file=None, database_url=url,  # type: ignore[call-arg]
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
