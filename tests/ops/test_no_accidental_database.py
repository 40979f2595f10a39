"""Commands that act on an existing record never create a database: run in the wrong folder
(the default SQLite path is relative) they say where they looked."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from handlers.cli import main

COMMANDS = [
    ["records", "schedule", "--as", "U0REC1"],
    ["records", "hold", "list", "--as", "U0REC1"],
    ["records", "disposition", "--as", "U0REC1", "--list"],
    ["audit", "verify"],
    ["audit", "publish-head", "--to", "heads.txt"],
    ["export", "--as", "U0REC1", "--out", "out"],
    ["training", "record", "U0OFF1", "2026-11-01"],
    ["keys", "rotate"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: "-".join(a[:2]))
def test_read_commands_refuse_to_create_a_database(empty_cwd: Path, args: list[str]) -> None:
    result = CliRunner(env={"NOTICEBOT_DATABASE_URL": None}).invoke(main, args)
    assert result.exit_code == 1
    assert f"no noticebot database at {empty_cwd / 'noticebot.db'}" in result.output
    assert "NOTICEBOT_DATABASE_URL=sqlite:///noticebot.db" in result.output
    assert "Traceback" not in result.output and "roster" not in result.output
    assert list(empty_cwd.iterdir()) == []  # nothing created


def test_an_empty_database_is_not_taken_for_noticebot(empty_cwd: Path) -> None:
    (empty_cwd / "other.db").touch()
    result = CliRunner(env={"NOTICEBOT_DATABASE_URL": "sqlite:///other.db"}).invoke(
        main, ["audit", "verify"])
    assert result.exit_code == 1 and "holds no noticebot schema" in result.output
    assert (empty_cwd / "other.db").stat().st_size == 0


def test_an_unreachable_database_is_one_line_with_the_password_masked(empty_cwd: Path) -> None:
    url = "postgresql+psycopg://bot:s3cr3tpw@127.0.0.1:1/noticebot?connect_timeout=2"
    result = CliRunner(env={"NOTICEBOT_DATABASE_URL": url}).invoke(main, ["audit", "verify"])
    assert result.exit_code == 1
    assert "cannot open the database at postgresql+psycopg://bot:***@127.0.0.1:1/" \
        in result.output
    assert "s3cr3tpw" not in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_commands_that_create_say_which_sqlite_file(empty_cwd: Path) -> None:
    result = CliRunner(env={"NOTICEBOT_DATABASE_URL": None}).invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0
    assert f"database: SQLite file {empty_cwd / 'noticebot.db'}" in result.output
    again = CliRunner(env={"NOTICEBOT_DATABASE_URL": None}).invoke(main, ["audit", "verify"])
    assert again.exit_code == 0 and "OK: 0 entries" in again.output


def test_an_unreachable_database_is_one_line_for_commands_that_create_too(
    empty_cwd: Path
) -> None:
    url = "postgresql+psycopg://bot:s3cr3tpw@127.0.0.1:1/noticebot?connect_timeout=2"
    result = CliRunner(env={"NOTICEBOT_DATABASE_URL": url}).invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "cannot open the database at postgresql+psycopg://bot:***@127.0.0.1:1/" \
        in result.output
    assert "s3cr3tpw" not in result.output and "Traceback" not in result.output

