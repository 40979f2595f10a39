"""The `noticebot` command line, run in-process through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.app import sample_roster_text
from bot.records import verify_export as verify_script
from bot.records.export import verify_export
from handlers.cli import main
from tests.conftest import START


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"NOTICEBOT_DATABASE_URL": database_url, "NOTICEBOT_ENV": "development"})


def test_every_command_has_help(cli: CliRunner) -> None:
    for args in (["--help"], ["shell", "--help"], ["db", "upgrade", "--help"],
                 ["roster", "import", "--help"], ["training", "record", "--help"],
                 ["audit", "verify", "--help"], ["export", "--help"], ["serve", "--help"],
                 ["audit", "checkpoint", "--help"], ["audit", "prove", "--help"],
                 ["keys", "checkpoint-key", "generate", "--help"],
                 ["socket", "--help"]):
        result = cli.invoke(main, args)
        assert result.exit_code == 0, args
        assert "Usage:" in result.output


def test_db_upgrade_is_repeatable(cli: CliRunner) -> None:
    assert cli.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert "up to date" in cli.invoke(main, ["db", "upgrade"]).output


def test_roster_import_training_record_export_and_verify(cli: CliRunner, tmp_path: Path) -> None:
    roster = tmp_path / "roster.toml"
    roster.write_text(sample_roster_text(START.date()), encoding="utf-8")
    first = cli.invoke(main, ["roster", "import", str(roster)])
    assert first.exit_code == 0 and "change(s)" in first.output
    again = cli.invoke(main, ["roster", "import", str(roster)])
    assert "0 change(s)" in again.output
    assert cli.invoke(main, ["training", "record", "U0OFF2", "2026-11-01"]).output.strip() \
        == "recorded"
    assert "already" in cli.invoke(main, ["training", "record", "U0OFF2", "2026-11-01"]).output
    unknown = cli.invoke(main, ["training", "record", "U0NOBODY", "2026-11-01"])
    assert unknown.exit_code != 0 and "not on the roster" in unknown.output
    bad_date = cli.invoke(main, ["training", "record", "U0OFF2", "11/01/2026"])
    assert bad_date.exit_code == 2
    out = tmp_path / "export"
    refused = cli.invoke(main, ["export", "--as", "U0OFF1", "--out", str(out)])
    assert refused.exit_code == 1 and "records role" in refused.output and not out.exists()
    exported = cli.invoke(main, ["export", "--as", "U0REC1", "--since", "2000-01-01",
                                 "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in (out / "entries.jsonl").read_text().splitlines()]
    assert rows and [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert any(r["action"] == "training.recorded" for r in rows)
    assert verify_export(out) == []
    heads = tmp_path / "heads.jsonl"
    assert cli.invoke(main, ["audit", "publish-head", "--to", str(heads)]).exit_code == 0
    against = cli.invoke(main, ["audit", "verify", "--against", str(heads)])
    assert against.exit_code == 0 and "1 published heads match" in against.output
    verified = cli.invoke(main, ["audit", "verify"])
    assert verified.exit_code == 0 and verified.output.startswith("OK:")


def test_checkpoint_key_checkpoint_export_prove_and_verify(database_url: str,
                                                          tmp_path: Path) -> None:
    key, heads = tmp_path / "checkpoint.pem", tmp_path / "heads.jsonl"
    generated = CliRunner().invoke(main, ["keys", "checkpoint-key", "generate", "--out", str(key)])
    assert generated.exit_code == 0 and "public key:  ed25519:" in generated.output
    public = generated.output.split("public key:  ")[1].split()[0]
    cli = CliRunner(env={"NOTICEBOT_DATABASE_URL": database_url, "NOTICEBOT_ENV": "development",
                         "NOTICEBOT_CHECKPOINT_KEY_FILE": str(key),
                         "NOTICEBOT_HEADS_FILE": str(heads)})
    roster = tmp_path / "roster.toml"
    roster.write_text(sample_roster_text(START.date()), encoding="utf-8")
    assert cli.invoke(main, ["roster", "import", str(roster)]).exit_code == 0
    shown = cli.invoke(main, ["keys", "checkpoint-key", "show"])
    assert shown.exit_code == 0 and f"public key:  {public}" in shown.output
    signed = cli.invoke(main, ["audit", "checkpoint"])
    assert signed.exit_code == 0 and signed.output.startswith("signed checkpoint "), signed.output
    refused = cli.invoke(main, ["audit", "publish-head", "--to", str(heads)])
    assert refused.exit_code == 1 and "audit checkpoint" in refused.output
    out = tmp_path / "export"
    exported = cli.invoke(main, ["export", "--as", "U0REC1", "--out", str(out)])
    assert exported.exit_code == 0 and "inclusion proof against signed checkpoint" \
        in exported.output, exported.output
    assert verify_export(out) == []
    assert verify_script.main([str(out), "--public-key", public]) == 0
    proved = cli.invoke(main, ["audit", "prove", "1"])
    assert proved.exit_code == 0 and json.loads(proved.output)["verified"] is True
    verified = cli.invoke(main, ["audit", "verify"])
    assert verified.exit_code == 0 and "since checkpoint" in verified.output
    full = cli.invoke(main, ["audit", "verify", "--full"])
    assert full.exit_code == 0 and "2 signed checkpoints match" in full.output


def test_roster_import_errors_are_clear_and_exit_non_zero(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[person]]\nuser = "U0X1"\nname = "X"\nemail = "nope"\nroles = ["officer"]\n',
                   encoding="utf-8")
    result = cli.invoke(main, ["roster", "import", str(bad)])
    assert result.exit_code == 1
    assert "line 4: [[person]] #1 key 'email': not an e-mail address" in result.output
    missing = cli.invoke(main, ["roster", "import", str(tmp_path / "absent.toml")])
    assert missing.exit_code == 2


def test_bad_settings_are_reported_by_name(database_url: str) -> None:
    runner = CliRunner(env={"NOTICEBOT_DATABASE_URL": "oracle://x"})
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1 and "NOTICEBOT_DATABASE_URL" in result.output


def test_serve_and_socket_refuse_to_start_without_slack_settings(database_url: str) -> None:
    runner = CliRunner(env={"NOTICEBOT_DATABASE_URL": database_url, "SLACK_BOT_TOKEN": "",
                            "SLACK_SIGNING_SECRET": "", "SLACK_APP_TOKEN": ""})
    serve = runner.invoke(main, ["serve"])
    assert serve.exit_code == 1
    assert "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET" in serve.output
    socket = runner.invoke(main, ["socket"])
    assert socket.exit_code == 1 and "SLACK_APP_TOKEN" in socket.output
