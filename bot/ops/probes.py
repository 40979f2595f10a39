"""Liveness and readiness.

- live: the process answers (nothing else: a database blip must not get every pod restarted);
- ready: the database answers, its schema is at this version's head, and the background
  threads this process runs (sweeps, outbox delivery) are alive. A replica that is not ready
  is taken out of the load balancer until it is again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from storage.db import current_revision, head_revision

log = logging.getLogger(__name__)


@dataclass
class Readiness:
    engine: Engine
    # name -> "is it alive?" for each background thread this process depends on.
    threads: dict[str, Callable[[], bool]] = field(default_factory=dict)
    _head: str | None = None

    def watch(self, name: str, alive: Callable[[], bool]) -> None:
        self.threads[name] = alive

    def check(self) -> tuple[bool, dict[str, str]]:
        """(ready, what each check found)."""
        found: dict[str, str] = {}
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            found["database"] = "ok"
            if self._head is None:
                self._head = head_revision(self.engine)
            current = current_revision(self.engine)
            found["schema"] = "ok" if current == self._head else (
                f"at {current}, needs {self._head}")
        except Exception as error:  # any database failure makes the replica not ready
            found["database"] = f"error: {type(error).__name__}"
        for name, alive in self.threads.items():
            try:
                found[name] = "ok" if alive() else "stopped"
            except Exception as error:
                found[name] = f"error: {type(error).__name__}"
        ready = all(value == "ok" for value in found.values())
        if not ready:
            log.warning("not ready: %s", ", ".join(f"{k}={v}" for k, v in found.items()),
                        extra={"checks": found})
        return ready, found
