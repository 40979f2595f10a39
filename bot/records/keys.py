"""Key rotation: re-encrypt everything sealed at rest with the newest key. Old keys keep
decrypting until rotation is done; then they can be dropped from NOTICEBOT_ENCRYPTION_KEYS."""

from __future__ import annotations

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from storage.models import RecordPayload
from storage.sealed import SEALED
from storage.vault import Vault

BATCH = 1000


def rotate_all(engine: Engine, vault: Vault) -> dict[str, int]:
    """Re-seal every sealed value; returns rows rewritten per table."""
    counts: dict[str, int] = {}
    for table in SEALED:
        with Session(engine) as session, session.begin():
            rows = session.exec(select(table.model)).all()
            for row in rows:
                for name in table.columns:
                    value = getattr(row, name)
                    if value:
                        setattr(row, name, vault.rotate(value))
                session.add(row)
            counts[str(table.model.__tablename__)] = len(rows)
    counts["record_payload"] = _rotate_payloads(engine, vault)
    return counts


def _rotate_payloads(engine: Engine, vault: Vault) -> int:
    """Payload rows are never updated in place (PostgreSQL refuses it): each batch is deleted
    and re-inserted in one transaction, so a row is never missing from outside."""
    done, last = 0, 0
    while True:
        with Session(engine) as session, session.begin():
            batch = session.exec(select(RecordPayload).where(col(RecordPayload.seq) > last)
                                 .order_by(col(RecordPayload.seq)).limit(BATCH)).all()
            if not batch:
                return done
            fresh = [RecordPayload(seq=row.seq, body=vault.rotate(row.body)) for row in batch]
            seqs = [row.seq for row in batch]
            session.expunge_all()
            session.execute(delete(RecordPayload).where(col(RecordPayload.seq).in_(seqs)))
            session.add_all(fresh)
            done, last = done + len(batch), seqs[-1]
