"""Migrations 0011 and 0012 keep today's data: each outbox row gets the platform that consumed
it, platform refs become Slack's, and every person keeps their Slack id as a Slack identity."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, text

from storage.db import _alembic_config, create_db_engine


def rows(db: Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in db.execute(text(sql)).all()]


def test_platform_migrations_keep_todays_rows(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        config = _alembic_config(engine)
        command.upgrade(config, "0010")
        with engine.begin() as db:
            db.execute(text("INSERT INTO aor (id, name, channel, active) VALUES "
                            "('HOU', 'Houston', 'C0HOU', true), ('DAL', 'Dallas', NULL, true)"))
            db.execute(text(
                "INSERT INTO person (user_id, name, email, aor_id, timezone, active) VALUES "
                "('U0OFF1', 'Olivia', 'o@example.gov', 'HOU', 'UTC', true)"))
            for status, ref, error in [("sent", None, None), ("sent", "1.5", None),
                                       ("pending", None, None), ("dead", None, "x"),
                                       ("pending", None, "uncertain: timeout")]:
                db.execute(text(
                    "INSERT INTO outbox (created_at, destination_kind, destination, payload, "
                    "status, attempts, alert, platform_ref, error) VALUES (CURRENT_TIMESTAMP, "
                    "'dm', 'U0OFF1', '{}', :status, 1, false, :ref, :error)"),
                    {"status": status, "ref": ref, "error": error})
            db.execute(text("INSERT INTO platform_message (message_key, channel, ts, updated_at) "
                            "VALUES ('CASE1:root', 'C0HOU', '1.5', CURRENT_TIMESTAMP)"))
        command.upgrade(config, "head")
        with engine.connect() as db:
            platforms = db.execute(text("SELECT platform FROM outbox ORDER BY id")).scalars()
            assert list(platforms) == ["console", "slack", "slack", "slack", "slack"]
            assert rows(db, "SELECT message_key, platform, channel, ts "
                            "FROM platform_message") == [
                ("CASE1:root", "slack", "C0HOU", "1.5")]
            assert rows(db, "SELECT user_id, platform, external_id FROM person_identity") == [
                ("U0OFF1", "slack", "U0OFF1")]
            assert rows(db, "SELECT aor_id, platform, conversation FROM aor_channel") == [
                ("HOU", "slack", "C0HOU")]
        # And back: the Slack refs stay.
        command.downgrade(config, "0010")
        with engine.connect() as db:
            assert rows(db, "SELECT message_key, ts FROM platform_message") == [
                ("CASE1:root", "1.5")]
        command.upgrade(config, "head")
    finally:
        engine.dispose()
