"""The append-only, hash-chained interaction record (directive §6, NOTES "Records").

Each entry's hash covers its predecessor's hash, its sequence number, time, actor, kind, action,
case and the SHA-256 digest of its payload. The payload itself lives in `record_payload`, so that
disposition can remove content while the chain still verifies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from storage.models import RecordEntry, RecordPayload
from storage.vault import Vault, VaultError

GENESIS_HASH = "0" * 64
# Arbitrary constant: the PostgreSQL advisory lock that serializes appends to the chain.
CHAIN_LOCK_KEY = 0x6E6F74696365


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_hex(data: str) -> str:
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    kind: str,
    action: str,
    case_id: str | None,
    payload_digest: str,
) -> str:
    material = [prev_hash, seq, at.isoformat(), actor, kind, action, case_id, payload_digest]
    return sha256_hex(canonical_json(material))


def append(
    session: Session,
    *,
    at: datetime,
    actor: str,
    kind: str,
    action: str,
    case_id: str | None = None,
    payload: dict[str, Any] | None = None,
    vault: Vault | None = None,
) -> RecordEntry:
    """Append one entry in the caller's transaction. Appends are serialized (advisory lock on
    PostgreSQL, BEGIN IMMEDIATE on SQLite) so two writers never chain to the same predecessor;
    the primary key on `seq` would refuse a fork even without the lock."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    head = session.exec(
        select(RecordEntry.seq, RecordEntry.hash).order_by(col(RecordEntry.seq).desc()).limit(1)
    ).first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    body = canonical_json(payload or {})
    digest = sha256_hex(body)
    at = at.replace(microsecond=(at.microsecond // 1000) * 1000)  # portable precision
    entry = RecordEntry(
        seq=seq,
        at=at,
        actor=actor,
        kind=kind,
        action=action,
        case_id=case_id,
        payload_digest=digest,
        prev_hash=prev_hash,
        hash=entry_hash(
            prev_hash=prev_hash,
            seq=seq,
            at=at,
            actor=actor,
            kind=kind,
            action=action,
            case_id=case_id,
            payload_digest=digest,
        ),
    )
    session.add(entry)
    session.flush()
    session.add(RecordPayload(seq=seq, body=vault.seal(body) if vault else body))
    session.flush()
    return entry


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None


def iter_entries(
    session: Session, *, batch: int = 5000
) -> Generator[tuple[RecordEntry, str | None], None, None]:
    statement = (
        select(RecordEntry, RecordPayload.body)
        .join(RecordPayload, col(RecordPayload.seq) == col(RecordEntry.seq), isouter=True)
        .order_by(col(RecordEntry.seq))
        .execution_options(yield_per=batch)
    )
    with session.exec(statement) as result:  # closes a server-side cursor on early exit
        yield from result


def verify(session: Session, vault: Vault | None = None) -> VerifyResult:
    """Walk the chain from the first entry; stop at the first entry that does not verify.
    A disposed entry (content removed, tombstone kept) still verifies."""
    with closing(iter_entries(session)) as rows:
        return _walk(rows, vault or Vault(()))


def _walk(rows: Iterator[tuple[RecordEntry, str | None]], vault: Vault) -> VerifyResult:
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for entry, body in rows:
        problem = None
        if entry.seq != expected_seq:
            problem = f"entry {expected_seq} is missing (next entry found is {entry.seq})"
        elif entry.prev_hash != prev_hash:
            problem = "does not chain to the previous entry (removed or reordered)"
        elif entry.hash != entry_hash(
            prev_hash=entry.prev_hash,
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            kind=entry.kind,
            action=entry.action,
            case_id=entry.case_id,
            payload_digest=entry.payload_digest,
        ):
            problem = "hash does not match its contents (altered)"
        elif body is not None and (plain := _open(vault, body)) is None:
            problem = "payload cannot be decrypted (is NOTICEBOT_ENCRYPTION_KEYS set?)"
        elif body is not None and sha256_hex(plain or "") != entry.payload_digest:
            problem = "payload does not match its digest (altered)"
        if problem is not None:
            return VerifyResult(
                ok=False,
                entries=count,
                head_seq=expected_seq - 1,
                head_hash=prev_hash,
                broken_seq=expected_seq if entry.seq != expected_seq else entry.seq,
                problem=problem,
            )
        count += 1
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return VerifyResult(ok=True, entries=count, head_seq=expected_seq - 1, head_hash=prev_hash)


def _open(vault: Vault, body: str) -> str | None:
    try:
        return vault.open(body)
    except VaultError:
        return None


def payload_of(session: Session, seq: int, vault: Vault | None = None) -> dict[str, Any] | None:
    row = session.get(RecordPayload, seq)
    if row is None:
        return None
    return dict(json.loads(vault.open(row.body) if vault else row.body))
