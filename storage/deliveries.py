"""Platform deliveries already acted on: taking a delivery's key is one statement."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, text
from sqlmodel import Session

from storage.types import UTCDateTime

# Written out rather than built with the dialects' `insert().on_conflict_do_nothing()`: those
# constructs opt out of SQLAlchemy's statement cache, so every interaction compiled the INSERT
# afresh. Both databases spell this statement the same way.
_TAKE = text(
    'INSERT INTO processed_delivery ("key", processed_at) VALUES (:key, :at) '
    'ON CONFLICT ("key") DO NOTHING RETURNING "key"'
).bindparams(bindparam("at", type_=UTCDateTime))  # the column's type: stored in UTC


def take(session: Session, key: str, *, at: datetime) -> bool:
    """Marks the delivery `key` as acted on in the caller's transaction; False when it already
    was. One round trip (INSERT … ON CONFLICT DO NOTHING): a twin of the same delivery that is
    still in flight on PostgreSQL waits for it here, and finds the key once it has committed."""
    # On the transaction's connection: a plain statement needs none of the ORM's bookkeeping.
    taken = session.connection().execute(_TAKE, {"key": key, "at": at}).first()
    return taken is not None


_GIVE_BACK = text('DELETE FROM processed_delivery WHERE "key" = :key')


def give_back(session: Session, key: str) -> None:
    """Unmarks `key` in the caller's transaction: the delivery was answered without anything
    being done (input that failed its checks), so the same request sent again is looked at
    again instead of being taken for a re-delivery of something done."""
    session.connection().execute(_GIVE_BACK, {"key": key})
