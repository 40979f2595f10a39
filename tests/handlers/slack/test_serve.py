"""`noticebot serve` as a real process: gunicorn, /healthz, a signed Slack request, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel import Session, select

from bot.app import load_roster_text, sample_roster_text
from bot.core.service import Core
from storage.models import Case
from tests.handlers.slack.conftest import SECRET, SlackUser
from tests.handlers.slack.fake_slack import FakeSlack
from tests.helpers import OFFICER, SUBJECT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(core: Core, database_url: str, fake_slack: FakeSlack) -> Iterator[SlackUser]:
    # The process runs on the real clock: give the roster training dates relative to today.
    load_roster_text(core, sample_roster_text(datetime.now(UTC).date()), actor="test",
                     source="test")
    port = free_port()
    env = {**os.environ, "NOTICEBOT_DATABASE_URL": database_url, "NOTICEBOT_PORT": str(port),
           "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": fake_slack.api_url}
    process = subprocess.Popen(
        [sys.executable, "-c", "from handlers.cli import main; main()", "serve", "--threads", "4"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError(process.stderr.read().decode() if process.stderr else "no start")
    user = SlackUser(base, fake_slack)
    yield user
    user.http.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    if process.stderr:
        process.stderr.close()


def test_serve_answers_health_and_opens_a_case_from_signed_requests(
    served: SlackUser, core: Core
) -> None:
    assert served.http.get("/healthz").json() == {"status": "ok"}
    assert served.http.post("/slack/events", content=b"x").status_code == 401
    assert served.command(OFFICER, "open").status_code == 200
    served.fake.wait_for(lambda: bool(served.fake.of("views.open")), timeout=20)
    values = {"notice_type": "red_notice", "intended_use": "enforcement",
              "extradition_pending": "no", **SUBJECT}
    assert served.submit(OFFICER, served.last_view(), values).status_code == 200
    with Session(core.engine) as session:
        served.fake.wait_for(lambda: session.exec(select(Case)).first() is not None, timeout=20)
    served.fake.wait_for(lambda: any(b["action"] == "validity_sent" for b in served.buttons()),
                         timeout=20)
    assert SUBJECT["subject_name"] not in json.dumps(served.fake.of("chat.postMessage"))


def _get(connection: socket.socket, path: str) -> bytes:
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: noticebot\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
        chunk = connection.recv(4096)
        if not chunk:
            return answer  # closed by the server
        answer += chunk
    return answer


def test_an_idle_kept_alive_connection_outlasts_a_client_pools_idle_timeout(
    served: SlackUser,
) -> None:
    # A server that closes idle connections before its clients do loses the requests sent at
    # that moment (2 of 3,000 in a load run when it closed after 2 s). Clients pool connections
    # for 5 s (httpx) to 60 s (load balancers): one idle for 3 s must still answer.
    host, port = served.http.base_url.host, served.http.base_url.port
    assert port is not None
    with socket.create_connection((host, port), timeout=10) as connection:
        assert _get(connection, "/healthz").startswith(b"HTTP/1.1 200")
        time.sleep(3)
        assert _get(connection, "/healthz").startswith(b"HTTP/1.1 200")
