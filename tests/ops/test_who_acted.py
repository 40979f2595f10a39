"""Every command-line record entry names the roster user given with `--as` and the
operating-system account and host that ran it; a deployment can bind the two."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlmodel import Session, col, select

from bot.app import sample_roster_text
from config.settings import Settings
from handlers.cli import main
from storage import record
from storage.db import create_db_engine
from storage.models import RecordEntry
from storage.vault import Vault
from tests.conftest import START, TEST_KEY

ORIGIN = {"os_user": getpass.getuser(), "host": socket.gethostname()}


def _entries(settings: Settings, since: int) -> list[tuple[RecordEntry, dict[str, Any]]]:
    engine = create_db_engine(settings.database_url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(RecordEntry).where(col(RecordEntry.seq) > since)
                                .order_by(col(RecordEntry.seq))).all()
            vault = Vault((TEST_KEY,))
            return [(row, record.payload_of(session, row.seq, vault) or {}) for row in rows]
    finally:
        engine.dispose()


def _cli(settings: Settings, **env: str) -> CliRunner:
    return CliRunner(env={"NOTICEBOT_DATABASE_URL": settings.database_url,
                          "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY, "NOTICEBOT_ENV": "development",
                          "NOTICEBOT_CLI_OPERATORS": "", **env})


def test_cli_entries_name_the_roster_user_and_the_os_account_and_host(
    settings: Settings, tmp_path: Path, empty_cwd: Path
) -> None:
    roster = tmp_path / "roster.toml"
    roster.write_text(sample_roster_text(START.date()), encoding="utf-8")
    cli = _cli(settings)
    assert cli.invoke(main, ["roster", "import", str(roster)]).exit_code == 0
    imported = _entries(settings, 0)
    assert imported and all(payload.get("origin") == ORIGIN for _, payload in imported)
    last = imported[-1][0].seq
    result = cli.invoke(main, ["records", "schedule", "--as", "U0REC1"])
    assert result.exit_code == 0, result.output
    assert '"level"' not in result.output  # one-shot commands log only warnings and errors
    viewed = _entries(settings, last)
    assert {row.action for row, _ in viewed} >= {"records.schedule", "records.schedule_viewed"}
    assert all(row.actor == "U0REC1" and payload["origin"] == ORIGIN for row, payload in viewed)


def test_a_binding_refuses_an_account_claiming_another_user_and_records_it(
    settings: Settings, tmp_path: Path, empty_cwd: Path
) -> None:
    roster = tmp_path / "roster.toml"
    roster.write_text(sample_roster_text(START.date()), encoding="utf-8")
    assert _cli(settings).invoke(main, ["roster", "import", str(roster)]).exit_code == 0
    last = _entries(settings, 0)[-1][0].seq
    bound_elsewhere = _cli(settings, NOTICEBOT_CLI_OPERATORS="U0REC1=someone-else")
    refused = bound_elsewhere.invoke(main, ["records", "hold", "list", "--as", "U0REC1"])
    assert refused.exit_code == 1
    assert f"account '{ORIGIN['os_user']}' is not bound to U0REC1" in refused.output
    entries = _entries(settings, last)
    refusal = [(row, p) for row, p in entries if row.kind == "refusal"]
    assert refusal and refusal[0][1]["code"] == "operator_not_bound"
    assert refusal[0][1]["origin"] == ORIGIN and refusal[0][0].actor == "U0REC1"
    bound_here = _cli(settings, NOTICEBOT_CLI_OPERATORS=f"U0REC1={ORIGIN['os_user']}")
    allowed = bound_here.invoke(main, ["records", "hold", "list", "--as", "U0REC1"])
    assert allowed.exit_code == 0 and "no active holds" in allowed.output
