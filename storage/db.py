"""Engine and session factories, and schema upgrades through Alembic."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x6E6D6967  # arbitrary: serializes schema upgrades across replicas


def create_db_engine(url: str, *, reads_only: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url`. On SQLite every transaction starts with BEGIN IMMEDIATE, so that
    writers serialize at the start instead of failing when they upgrade a read lock; with
    `reads_only` (a long read such as `audit verify`) it does not, so the bot's writers are
    not held up meanwhile (in WAL mode readers and a writer go side by side). The engine's
    own writers take turns in this process (`TurnTaking`) before they ask SQLite."""
    parsed = make_url(url)
    # A database error's message must not carry the statement's values (subject details) into
    # a log line or a traceback.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    on_file = parsed.database not in (None, "", ":memory:")
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_SECONDS}
    if on_file and not reads_only:
        connect_args["factory"] = TurnTaking.for_engine()
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if on_file:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if reads_only or connection.get_execution_options().get(_READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
            return
        raw = connection.connection.dbapi_connection
        if isinstance(raw, TurnTaking):
            raw.take_turn()  # given back by the rollback that follows, should BEGIN fail
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


_READ_ONLY = "noticebot_read_only"
SQLITE_BUSY_SECONDS = 30  # how long a writer waits for another process's writer
TURN_SECONDS = SQLITE_BUSY_SECONDS  # and for one of its own process


class TurnTaking(sqlite3.Connection):
    """A SQLite connection that takes its engine's turn before it begins a write and gives it
    back when the transaction ends (commit, rollback or close), whichever way it ends.

    One engine's writers queue on a lock in this process before they ask SQLite for its write
    lock. SQLite makes a writer that finds the lock taken sleep and retry, for ever longer
    sleeps (1, 2, 5, 10 ... 100 ms), and a newcomer can take the lock meanwhile: under load a
    few interactions waited for hundreds of milliseconds while each transaction takes a few.
    A thread waiting on this lock wakes as soon as the writer before it ends. Writers in other
    processes (a worker) still meet SQLite's own wait."""

    turns: threading.Lock  # set on each engine's own subclass (`for_engine`)
    holding = False

    @classmethod
    def for_engine(cls) -> type[TurnTaking]:
        """A connection class with a lock of its own, for one engine's connections."""
        return type("EngineTurnTaking", (cls,), {"turns": threading.Lock()})

    def take_turn(self) -> None:
        if not self.holding:
            # Past SQLite's own wait, go on without the turn: SQLite then decides, as it would
            # have without turns (a writer of this same thread that never ends, say).
            self.holding = self.turns.acquire(timeout=TURN_SECONDS)

    def end_turn(self) -> None:
        if self.holding:
            self.holding = False
            self.turns.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()


def reading(engine: Engine) -> Session:
    """A session that only reads (who a platform user is, how a mention renders, whether a
    message was posted). On SQLite it starts with a plain BEGIN, so it neither waits for nor
    holds up the one writer: these lookups run on every request and every delivered message,
    and with BEGIN IMMEDIATE each of them queued behind whole interactions."""
    return Session(engine.execution_options(**{_READ_ONLY: True}))


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def insert_into(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `table` in the session's dialect, which can say what to do ON CONFLICT
    (both databases spell it the same way; SQLAlchemy's generic INSERT cannot). SQLAlchemy
    compiles these afresh every time (they opt out of its statement cache): a statement run on
    every interaction is written out instead (`deliveries.take`)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent). On PostgreSQL replicas starting
    together take turns (a session advisory lock), so only one of them migrates."""
    if engine.dialect.name != "postgresql":
        command.upgrade(_alembic_config(engine), "head")
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            command.upgrade(_alembic_config(engine), "head")
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                               {"key": MIGRATION_LOCK_KEY})
            connection.commit()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def needs_upgrade(engine: Engine) -> bool:
    return current_revision(engine) != head_revision(engine)


class DatabaseMissing(Exception):
    """There is no usable noticebot database where the settings point; the message says where
    that was (password masked) and what to do."""


def sqlite_path(url: str) -> Path | None:
    """The absolute path of a SQLite database file, or None (not SQLite, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


def open_existing(url: str, *, reads_only: bool = False) -> Engine:
    """An engine on a noticebot database that must already exist, at the newest schema.
    Commands that only read or act on existing records use it, so that run in the wrong folder
    (the default SQLite path is relative) they say where they looked instead of creating an
    empty database and reporting nonsense such as "you are not on the roster"."""
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise DatabaseMissing(
            f"no noticebot database at {path} (NOTICEBOT_DATABASE_URL={shown}, relative to "
            f"the folder the command runs in); run it where the bot's database is, or set "
            f"NOTICEBOT_DATABASE_URL")
    # SQLite is looked at read-only first: not even WAL mode is switched on in a stranger file.
    probe = (create_engine(f"sqlite:///file:{path}?mode=ro&uri=true") if path is not None
             else create_db_engine(url, reads_only=reads_only))
    try:
        tables = set(inspect(probe).get_table_names())
        current = current_revision(probe) if "alembic_version" in tables else None
        head = head_revision(probe)
    except SQLAlchemyError as error:
        probe.dispose()
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise DatabaseMissing(f"cannot open the database at {shown} "
                              f"(NOTICEBOT_DATABASE_URL): {reason}") from None
    problem = None
    if current is None:
        problem = (f"the database at {shown} (NOTICEBOT_DATABASE_URL) holds no noticebot "
                   "schema; check the setting, or create it with `noticebot db upgrade`")
    elif current != head:
        problem = (f"the database at {shown} is at schema {current}, this version needs "
                   f"{head}; run `noticebot db upgrade` first")
    if problem is not None or path is not None:
        probe.dispose()
    if problem is not None:
        raise DatabaseMissing(problem)
    return create_db_engine(url, reads_only=reads_only) if path is not None else probe
