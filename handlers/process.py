"""Tuning shared by the long-running servers (`serve`'s workers and `noticebot teams`)."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Called once a server has started. What start-up built (modules, ORM mappers, the SDKs'
    models, compiled settings) lives as long as the process, yet every full collection of the
    cyclic garbage collector walked all of it: about 250,000 objects in `noticebot teams`, a
    pause of 150-180 ms on the build machine that held up every request in flight. Frozen, it
    is never walked again; a full collection then walks only what requests left behind."""
    gc.collect()
    gc.freeze()
