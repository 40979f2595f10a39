"""Several platforms' delivery loops in one process (a deployment on Slack and Teams), driven
as one by the relay thread (bot/schedule/relay_loop.py): a pass drains every loop at once, each
in its own thread, so a platform that is slow or backing off never holds up the other."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol


class Loop(Protocol):
    def drain(self, *, limit: int = 200) -> int: ...

    def nudge(self) -> None: ...

    def stop(self) -> None: ...


class Together:
    """`drain`, `nudge` and `stop` of several loops as one."""

    def __init__(self, loops: Sequence[Loop]) -> None:
        self.loops = list(loops)

    def drain(self, *, limit: int = 200) -> int:
        if len(self.loops) == 1:
            return self.loops[0].drain(limit=limit)
        with ThreadPoolExecutor(len(self.loops), thread_name_prefix="platform") as pool:
            return sum(pool.map(lambda loop: loop.drain(limit=limit), self.loops))

    def nudge(self) -> None:
        for loop in self.loops:
            loop.nudge()

    def stop(self) -> None:
        for loop in self.loops:
            loop.stop()
