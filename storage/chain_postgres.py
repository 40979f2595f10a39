"""How the record's appends go on PostgreSQL: two round trips while the chain's lock is held.

Every writer waits on that lock, and a worker's threads share one interpreter, so each round trip
inside it can also wait for the interpreter (the GIL) behind other requests: the fewer the round
trips, the shorter every writer's wait."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from storage.models import RecordEntry, RecordPayload, RecordTreeNode

# Arbitrary constant: the advisory lock that serializes appends to the chain.
CHAIN_LOCK_KEY = 0x6E6F74696365
# A row to append: RecordEntry's columns in this order, then the payload's stored body.
Row = tuple[int, datetime, str, str, str, str | None, str, str, str, str]
ROW_NAMES = ("seq", "at", "actor", "kind", "action", "case_id", "payload_digest", "prev_hash",
             "hash", "body")

# Two statements in one round trip: the second reads the head after the first holds the lock,
# so it sees the last writer's commit (in READ COMMITTED each statement takes its own snapshot).
_LOCK_AND_HEAD = (f"SELECT pg_advisory_xact_lock({CHAIN_LOCK_KEY}); "
                  f"SELECT seq, hash FROM {RecordEntry.__tablename__} ORDER BY seq DESC LIMIT 1")
# One statement whose text does not change with the number of rows (so it is compiled once and
# prepared by the server): arrays unnested into the three tables.
_INSERT = text(f"""
WITH entries AS (
  INSERT INTO {RecordEntry.__tablename__}
    (seq, at, actor, kind, action, case_id, payload_digest, prev_hash, hash)
  SELECT * FROM unnest(CAST(:seq AS bigint[]), CAST(:at AS timestamptz[]),
    CAST(:actor AS text[]), CAST(:kind AS text[]), CAST(:action AS text[]),
    CAST(:case_id AS text[]), CAST(:payload_digest AS text[]), CAST(:prev_hash AS text[]),
    CAST(:hash AS text[]))
), payloads AS (
  INSERT INTO {RecordPayload.__tablename__} (seq, body)
  SELECT * FROM unnest(CAST(:seq AS bigint[]), CAST(:body AS text[]))
)
INSERT INTO {RecordTreeNode.__tablename__} (level, idx, hash)
SELECT * FROM unnest(CAST(:level AS integer[]), CAST(:idx AS bigint[]),
  CAST(:node_hash AS text[]))""")


def locked_head(session: Session) -> tuple[Any, ...] | None:
    """Takes the chain's lock (until the transaction ends) and returns (seq, hash) of its head,
    or None when the chain is empty."""
    # Without parameters both statements go in one message (PostgreSQL's simple protocol).
    result = session.connection().exec_driver_sql(_LOCK_AND_HEAD)
    try:
        result.cursor.nextset()
        head: tuple[Any, ...] | None = result.cursor.fetchone()
    finally:
        result.close()
    return head


def insert(session: Session, rows: list[Row], nodes: list[dict[str, Any]]) -> None:
    """The entries, their payloads and the tree's new nodes, in one statement."""
    columns = list(zip(*rows, strict=True))
    session.execute(_INSERT, {
        **{name: list(values) for name, values in zip(ROW_NAMES, columns, strict=True)},
        "level": [node["level"] for node in nodes], "idx": [node["idx"] for node in nodes],
        "node_hash": [node["hash"] for node in nodes]})
