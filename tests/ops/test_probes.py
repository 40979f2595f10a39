"""Liveness says only that the process answers; readiness checks the database, the schema and
the background threads. The worker serves the same on its own port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from bot.clock import ManualClock
from bot.core.service import Core
from bot.ops.probes import Readiness
from handlers.ops import ops_response
from storage.db import create_db_engine
from tests.conftest import TEST_KEY


def get(path: str, readiness: Readiness, clock: ManualClock) -> tuple[str, dict[str, Any]]:
    answered: dict[str, str] = {}

    def start_response(status: str, _headers: list[tuple[str, str]]) -> None:
        answered["status"] = status

    body = ops_response({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response,
                        readiness=readiness, clock=clock)
    assert body is not None
    return answered["status"], json.loads(b"".join(body))


def test_ready_only_with_database_schema_and_threads(core: Core, clock: ManualClock) -> None:
    alive = {"sweeps": True}
    readiness = Readiness(core.engine)
    readiness.watch("sweeps", lambda: alive["sweeps"])
    assert get("/readyz", readiness, clock) == ("200 OK", {"status": "ok", "checks": {
        "database": "ok", "schema": "ok", "sweeps": "ok"}})
    alive["sweeps"] = False
    status, body = get("/readyz", readiness, clock)
    assert status.startswith("503") and body["checks"]["sweeps"] == "stopped"
    assert get("/livez", readiness, clock) == ("200 OK", {"status": "ok"})


def test_a_database_outage_is_not_ready_but_still_live(tmp_path: Path,
                                                        clock: ManualClock) -> None:
    gone: Engine = create_db_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    readiness = Readiness(gone)
    status, body = get("/readyz", readiness, clock)
    assert status.startswith("503") and body["checks"]["database"].startswith("error")
    assert get("/healthz", readiness, clock)[0].startswith("503")
    assert get("/livez", readiness, clock) == ("200 OK", {"status": "ok"})  # no restart


def test_a_schema_behind_this_version_is_not_ready(tmp_path: Path, clock: ManualClock) -> None:
    fresh = create_db_engine(f"sqlite:///{tmp_path / 'fresh.db'}")  # never migrated
    status, body = get("/readyz", Readiness(fresh), clock)
    assert status.startswith("503") and body["checks"]["schema"].startswith("at None, needs")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_worker_serves_probes_and_metrics_and_stops_quickly(database_url: str,
                                                            tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "NOTICEBOT_DATABASE_URL": database_url, "SLACK_BOT_TOKEN": "",
           "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY, "NOTICEBOT_SWEEP_SECONDS": "5"}
    out = tmp_path / "out"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "from handlers.cli import main; main()", "--log-format", "text",
             "worker", "--metrics-port", str(port)], env=env, stdout=sink,
            stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(out.read_text())
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "schema": "ok", "sweeps": "ok"}
        assert httpx.get(f"{base}/livez").json() == {"status": "ok"}
        scraped = httpx.get(f"{base}/metrics").text
        assert "noticebot_outbox_depth" in scraped and "noticebot_approvals_waiting" in scraped
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 10  # ~1 s idle; room for a loaded CI
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = out.read_text()
    assert "Traceback" not in text
    # --log-format text: readable lines, not JSON.
    assert " INFO    noticebot: worker running" in text and "worker stopped" in text
    assert not text.lstrip().startswith("{")



def test_a_busy_metrics_port_is_one_clear_line(database_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "NOTICEBOT_DATABASE_URL": database_url, "SLACK_BOT_TOKEN": "",
               "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY}
        result = subprocess.run(
            [sys.executable, "-c", "from handlers.cli import main; main()", "worker",
             "--metrics-port", str(port)], env=env, capture_output=True, timeout=60)
    assert result.returncode == 1
    assert f"Error: cannot serve metrics on --metrics-port {port}: Address already in use" \
        in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
