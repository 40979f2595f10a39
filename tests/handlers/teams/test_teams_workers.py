"""`noticebot teams --workers 2`: the workers' counters are kept in shared files, so whichever
worker a scrape of /metrics reaches, it reports every worker's interactions; and each worker,
a process of its own, logs in the format the command was given and streams what it records to
the SIEM."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.core.service import Core
from bot.messages import ActionId, ActionValue
from tests.conftest import TEST_KEY
from tests.handlers.slack.test_serve import free_port
from tests.handlers.teams.conftest import OIDS, with_teams_identities
from tests.handlers.teams.fake_teams import APP_ID, TENANT, FakeTeams, activity
from tests.helpers import OFFICER

CLICKS = 12
REFUSED = re.compile(r'^noticebot_interactions_total\{kind="click",outcome="refused"\} (\S+)$',
                     re.MULTILINE)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _refused_clicks(base: str) -> float:
    found = REFUSED.search(httpx.get(f"{base}/metrics", timeout=5).text)
    return float(found.group(1)) if found else 0.0


def test_every_scrape_counts_every_workers_interactions(
        core: Core, database_url: str, fake: FakeTeams, tmp_path: Path) -> None:
    with_teams_identities(core, fake)
    port = free_port()
    env = {**os.environ, "NOTICEBOT_DATABASE_URL": database_url,
           "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY, "NOTICEBOT_PLATFORMS": "teams",
           "NOTICEBOT_TEAMS_CLIENT_ID": APP_ID, "NOTICEBOT_TEAMS_TENANT_ID": TENANT,
           "NOTICEBOT_TEAMS_ALLOW_UNAUTHENTICATED": "true", "NOTICEBOT_TEAMS_PORT": str(port),
           "NOTICEBOT_ENV": "development", "PROMETHEUS_MULTIPROC_DIR": "",
           "NOTICEBOT_SIEM": "stdout"}
    out = tmp_path / "out"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "from handlers.cli import main; main()", "--log-format",
             "text", "teams", "--workers", "2"], env=env, stdout=sink, stderr=subprocess.STDOUT,
            cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(base):
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        time.sleep(2)  # both workers up, not only the first
        press = ActionValue(ActionId.show_case, "HOU-2026-9999").to_dict()
        for _ in range(CLICKS):  # each on a new connection: spread over the workers
            body = activity("invoke", object_id=OIDS[OFFICER], name="adaptiveCard/action",
                            value={"action": {"type": "Action.Execute", "verb": "nb",
                                              "data": press}, "trigger": "manual"},
                            service_url=fake.url, conversation="19:c@thread.tacv2",
                            conversation_type="channel")
            assert httpx.post(f"{base}/api/messages", json=body, timeout=10).status_code == 200
        scraped = [_refused_clicks(base) for _ in range(8)]
        assert scraped == [CLICKS] * 8, scraped
    finally:
        process.terminate()
        process.wait(timeout=30)
    said = out.read_text()
    assert len(re.findall(r"Z INFO +noticebot\.teams: Teams app listening", said)) == 2, said
    streamed = [json.loads(line) for line in said.splitlines()
                if line.startswith('{"action":"click.show_case"')]
    assert {e["type"] for e in streamed} == {"noticebot.record"}
    assert sorted(e["kind"] for e in streamed) == ["click"] * CLICKS + ["refusal"] * CLICKS
