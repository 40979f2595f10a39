"""Platform deliveries already acted on: taking a delivery's key is one statement."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col

from storage.db import insert_into
from storage.models import ProcessedDelivery


def take(session: Session, key: str, *, at: datetime) -> bool:
    """Marks the delivery `key` as acted on in the caller's transaction; False when it already
    was. One round trip (INSERT … ON CONFLICT DO NOTHING): a twin of the same delivery that is
    still in flight on PostgreSQL waits for it here, and finds the key once it has committed."""
    taken = session.execute(
        insert_into(session, ProcessedDelivery).values(key=key, processed_at=at)
        .on_conflict_do_nothing(index_elements=[col(ProcessedDelivery.key)])
        .returning(col(ProcessedDelivery.key))).first()
    return taken is not None
