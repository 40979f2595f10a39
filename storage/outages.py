"""Outages of a platform's credentials, shared by every process that delivers to it: which one
tells the admins that an outage began, and which that it ended. Each is one statement, so two
processes deciding at once cannot both tell."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, text
from sqlmodel import Session

from config.platforms import Platform
from storage.types import UTCDateTime

# Written out, as `deliveries.take` is: the dialects' upsert constructs are compiled afresh on
# every call, and both databases spell this the same way. On PostgreSQL a twin running at
# the same time waits on the row and then finds the outage begun.
_BEGIN = text(
    "INSERT INTO credentials_outage (platform, since, ended_at) VALUES (:platform, :since, NULL) "
    "ON CONFLICT (platform) DO UPDATE SET since = excluded.since, ended_at = NULL "
    "WHERE credentials_outage.ended_at IS NOT NULL RETURNING platform"
).bindparams(bindparam("since", type_=UTCDateTime))
_END = text(
    "UPDATE credentials_outage SET ended_at = :at WHERE platform = :platform AND ended_at IS NULL "
    "RETURNING since"
).bindparams(bindparam("at", type_=UTCDateTime))


def begin(session: Session, platform: Platform, *, since: datetime) -> bool:
    """Marks an outage of `platform` as told, in the caller's transaction; False when one is
    already (another process told of it, or is telling)."""
    return session.execute(_BEGIN, {"platform": platform.value, "since": since}).first() \
        is not None


def end(session: Session, platform: Platform, *, at: datetime) -> datetime | None:
    """Ends the told outage of `platform`, in the caller's transaction: when it began, or None
    when there is none (none was told, or another process ended it)."""
    row = session.execute(_END.columns(since=UTCDateTime()),
                          {"platform": platform.value, "at": at}).first()
    return None if row is None else row[0]
