"""A full walk as operations see it: every log line at DEBUG and every metric, with no secret
and no subject detail in any of them."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import httpx
import respx
from sqlmodel import Session, select

from bot.core.service import Core
from bot.messages import ActionId
from bot.ops import metrics
from bot.ops.logs import configure_logging, log_context
from bot.schedule.runner import _timed_sweep
from config.settings import LogFormat, LogLevel
from storage.models import UsncbRequest
from tests.conftest import TEST_KEY
from tests.helpers import CLEAN_REVIEW, FRO, OFFICER, SUBJECT, TODAY, open_case, press
from tests.usncb.conftest import LIAISON, SECRET, callback
from tests.usncb.test_webhook import send_validity


def scrape(core: Core) -> dict[str, float]:
    text = metrics.exposition(core.engine, core.clock).decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_a_full_walk_logs_and_counts_without_secrets_or_subject_details(
    webhook_core: Core, liaison: respx.MockRouter
) -> None:
    core = webhook_core
    core.settings = core.settings.model_copy(update={"log_level": LogLevel.debug})
    out = io.StringIO()
    configure_logging(core.settings, stream=out, log_format=LogFormat.json)
    before = scrape(core)
    liaison.post(LIAISON).mock(side_effect=[httpx.Response(503), httpx.Response(200),
                                            httpx.Response(200), httpx.Response(200)])

    def answer(kind: str, value: str, **extra: Any) -> None:
        with Session(core.engine) as session:
            request = session.exec(select(UsncbRequest).where(
                UsncbRequest.kind == kind)).all()[-1]
        with log_context(request_id="cb-" + kind, platform="usncb"):
            status, _ = callback(core, {"request_id": request.external_id, "answer": value,
                                        "answered_on": TODAY, **extra})
        assert status.startswith("200"), status

    case_id = open_case(core)
    assert not press(core, FRO, case_id, ActionId.review, CLEAN_REVIEW).ok  # a refusal
    send_validity(core, case_id)
    answer("validity", "active")
    assert press(core, OFFICER, case_id, ActionId.review, CLEAN_REVIEW).ok
    assert press(core, OFFICER, case_id, ActionId.request_approval).ok
    waiting = scrape(core)
    assert waiting["noticebot_approvals_waiting"] == 1
    assert press(core, FRO, case_id, ActionId.approve).ok
    _timed_sweep(core)
    after = scrape(core)

    assert delta(after, before, 'noticebot_interactions_total{kind="form",outcome="ok"}') >= 1
    assert delta(after, before, 'noticebot_interactions_total{kind="click",outcome="ok"}') >= 2
    assert delta(after, before, 'noticebot_interactions_total{kind="click",outcome="refused"}') \
        == 1
    assert sum(delta(after, before, key) for key in after
               if key.startswith('noticebot_refusals_total{') and 'kind="click"' in key) == 1
    assert delta(after, before, 'noticebot_usncb_deliveries_total{result="delivered"}') == 1
    assert delta(after, before, "noticebot_sweep_duration_seconds_count") == 1
    assert after["noticebot_sweep_last_success_timestamp_seconds"] > 0
    assert after["noticebot_approvals_waiting"] == 0
    assert after["noticebot_outbox_depth{platform=\"slack\"}"] >= 1  # nothing relays here
    assert after['noticebot_usncb_undelivered{state="failed"}'] == 0

    lines = out.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert any(r.get("action") == "click.review" and r.get("outcome") == "refused"
               and r.get("actor") == FRO and r.get("case_id") == case_id for r in records)
    assert any(r.get("platform") == "usncb" and r.get("request_id") == "cb-validity"
               for r in records)
    text = out.getvalue()
    for secret in (SECRET, TEST_KEY, *SUBJECT.values()):
        assert secret not in text, secret
