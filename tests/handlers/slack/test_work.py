"""A Slack request is answered before its work is done, even when every worker is busy."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from bot.core.service import Core
from bot.messages import Outcome
from handlers.slack.work import WORK_THREADS
from tests.handlers.slack.conftest import SlackUser
from tests.helpers import OFFICER, entries


def test_acks_do_not_wait_for_busy_workers_and_no_work_is_lost(
        slack: SlackUser, core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    started: list[str] = []
    command = core.command

    def held(**kwargs: Any) -> Outcome:
        started.append(kwargs["text"])
        assert release.wait(10), "the test never released the work"
        return command(**kwargs)

    monkeypatch.setattr(core, "command", held)
    # Every worker held, and one more request queued behind them: each is still answered.
    # Were an ack to wait for a free worker, the last request would time out here.
    slack.http.timeout = httpx.Timeout(5)
    texts = [f"show NB-{n}" for n in range(WORK_THREADS + 1)]
    try:
        answers = [slack.command(OFFICER, text) for text in texts]
        assert [answer.status_code for answer in answers] == [200] * len(texts)
        assert len(started) <= WORK_THREADS  # the last one is waiting for a worker
    finally:
        release.set()
    slack.settle(core)
    assert sorted(started) == sorted(texts)
    recorded = [entry for entry in entries(core, kind="command") if entry.actor == OFFICER]
    assert len(recorded) == len(texts)
