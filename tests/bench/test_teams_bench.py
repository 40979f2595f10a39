"""TP1's own soundness: the requests it measures are fresh ones, and a run in which a server
answered with a failure, or noticebot's core did not record a request, cannot meet a target
(both once made a broken or idle core look fast)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.teams import Plan, _drive, _recorded, _warm_up_apart
from bot.core.service import Core
from bot.messages import ActionId, ActionValue
from handlers.teams.inbound import FAILED
from tests.helpers import FRO, OFFICER, buttons, open_case, to_review


def _plan(count: int) -> Plan:
    return [(n / 10, "click", {"id": f"activity-{n}"}) for n in range(count)]


def test_the_warm_up_sends_requests_of_its_own_and_the_measured_run_starts_at_zero() -> None:
    warm_up, measured = _warm_up_apart(_plan(11), measured=10)
    assert [body["id"] for _, _, body in warm_up] == ["activity-0"]
    assert [body["id"] for _, _, body in measured] == [f"activity-{n}" for n in range(1, 11)]
    assert measured[0][0] == 0 and measured[-1][0] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="no request for the warm-up"):
        _warm_up_apart(_plan(10), measured=10)


@pytest.fixture
def answering_failed() -> Iterator[int]:
    """A loopback server answering every other request with the Teams app's failure reply."""
    served = 0
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal served
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                served += 1
                text = FAILED if served % 2 else "Done."
            body = json.dumps({"type": "message", "text": text}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_answers_that_say_the_request_failed_are_counted(answering_failed: int) -> None:
    took, failed = _drive(answering_failed, "token", [(0.0, "click", {"id": str(n)})
                                                     for n in range(6)])
    assert len(took["click"]) == 6
    assert failed == 3


def test_recorded_counts_the_clicks_and_submits_the_core_acted_on(core: Core,
                                                                 database_url: str) -> None:
    case_id = open_case(core)  # a form submit
    before = _recorded(database_url)
    to_review(core, case_id)  # commands and submits
    after_review = _recorded(database_url)
    assert after_review > before
    approve = buttons(core, case_id).get(ActionId.approve)
    value = approve or ActionValue(action=ActionId.approve, case_id=case_id)
    core.click(actor=FRO, value=value, delivery_key="once")
    core.click(actor=FRO, value=value, delivery_key="once")  # a re-delivery: not acted on
    core.command(actor=OFFICER, text="help")  # not a click or a submit
    assert _recorded(database_url) == after_review + 1
