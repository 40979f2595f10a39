"""Fixtures build their own settings and database: SQLite by default, or a fresh PostgreSQL
schema per test when NOTICEBOT_TEST_DATABASE_URL is set."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text

from bot.app import build_core, load_roster_text, sample_roster_text
from bot.clock import ManualClock
from bot.core.service import Core
from bot.ops.logs import QUIET
from config.settings import Settings
from storage.db import create_db_engine
from storage.vault import Vault

PG_URL = os.environ.get("NOTICEBOT_TEST_DATABASE_URL", "")
# A Monday afternoon; tests move it by hand.
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def on_postgres() -> bool:
    return PG_URL.startswith("postgresql")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if not on_postgres():
        yield f"sqlite:///{tmp_path / 'noticebot.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands configure logging for the whole process: undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIET}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


# Fixed test keys, so runs are repeatable; the second only decrypts (rotation tests).
TEST_KEY = "lN0b2mE0QHk0dFf9qfXc3l2wM6Y7a1p4R5s8u9v0x2A="
OLD_KEY = "0Jt8yYv3oK5bQ9cR2mW6zX1nL4pF7hD0sA3gE8uI5kM="


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(_env_file=None, database_url=database_url,
                    watchlist_countries=frozenset({"ZZ"}), encryption_keys=(TEST_KEY,))


@pytest.fixture
def vault(settings: Settings) -> Vault:
    return Vault(settings.vault_keys)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def bare_core(settings: Settings, clock: ManualClock, engine: Engine) -> Core:
    return build_core(settings, clock=clock, engine=engine)


@pytest.fixture
def core(bare_core: Core, clock: ManualClock) -> Core:
    load_roster_text(bare_core, sample_roster_text(clock.now().date()), actor="test",
                     source="sample")
    return bare_core


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so a command under test reads no stray .env or database."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder
