"""Published heads: the chain's last (seq, hash) written outside the database, so that a record
whose tail was cut off, or that was rewritten from some entry on, no longer matches.

The heads file is JSON Lines, one `{"published_at": ..., "seq": N, "hash": ...}` per
publication, only ever appended to. Keep it (or copies of it) where the database's
administrators cannot rewrite it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.core.context import unit_of_work
from config.settings import Settings
from storage import record
from storage.models import RecordEntry
from storage.vault import Vault

_HASH = re.compile(r"[0-9a-f]{64}")
LOOKUP_BATCH = 500
# The signature has no actor: the publication is recorded as noticebot's own act.
HEADS_ACTOR = "noticebot:heads"


class HeadsError(Exception):
    """The head cannot be published (the chain does not verify, or it is empty)."""


@dataclass(frozen=True)
class HeadRecord:
    published_at: datetime
    seq: int
    hash: str
    target: Path


@dataclass(frozen=True)
class AgainstResult:
    ok: bool
    checked: int  # published heads found intact (before the first problem, if any)
    problem: str | None = None


def publish_head(*, engine: Engine, settings: Settings, clock: Clock, target: Path) -> HeadRecord:
    """Append the verified head of the chain to `target` (created if missing, fsynced), then
    record the publication (that entry comes after the published head)."""
    with Session(engine) as session:  # closed before anything is written to the record
        result = record.verify(session, Vault(settings.vault_keys))
    if not result.ok:
        raise HeadsError(f"the record does not verify (entry {result.broken_seq}: "
                         f"{result.problem}); no head was published")
    if result.head_seq == 0:
        raise HeadsError("the record is empty; there is no head to publish")
    published_at = clock.now()
    line = json.dumps({"published_at": published_at.isoformat(), "seq": result.head_seq,
                       "hash": result.head_hash})
    try:
        _append_line(target, line)
    except OSError as exc:
        raise HeadsError(f"cannot append to {target}: {exc}") from None
    with unit_of_work(engine, clock=clock, settings=settings, actor=HEADS_ACTOR) as ctx:
        ctx.record("admin", "records.head_published", seq=result.head_seq,
                   hash=result.head_hash, target=str(target))
    return HeadRecord(published_at=published_at, seq=result.head_seq, hash=result.head_hash,
                      target=target)


def _append_line(target: Path, line: str) -> None:
    created = not target.exists()
    descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # A previous publication cut short keeps its own (malformed) line, not this one.
        size = os.fstat(descriptor).st_size
        prefix = ""
        if size:
            with target.open("rb") as handle:
                handle.seek(size - 1)
                prefix = "" if handle.read(1) == b"\n" else "\n"
        data = (prefix + line + "\n").encode("utf-8")
        written = os.write(descriptor, data)  # one write: concurrent appends do not interleave
        if written != len(data):
            raise OSError(f"short write to {target}")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if created:
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@dataclass(frozen=True)
class _Published:
    line: int
    published_at: str
    seq: int
    hash: str


def _parse(number: int, text: str) -> _Published | str:
    try:
        value: Any = json.loads(text)
    except ValueError:
        return f"line {number} of the heads file is not JSON"
    if not isinstance(value, dict):
        return f"line {number} of the heads file is not a JSON object"
    seq, digest, at = value.get("seq"), value.get("hash"), value.get("published_at")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return f"line {number} of the heads file has no valid seq (a whole number from 1)"
    if not isinstance(digest, str) or not _HASH.fullmatch(digest):
        return f"line {number} of the heads file has no valid hash (64 lowercase hex digits)"
    if not isinstance(at, str) or not at:
        return f"line {number} of the heads file has no published_at"
    return _Published(line=number, published_at=at, seq=seq, hash=digest)


def verify_against(*, engine: Engine, settings: Settings, heads_file: Path,
                   workers: int | None = None) -> AgainstResult:
    """Verify the chain, then check that every head published in `heads_file` is still in it:
    the entry with that seq exists and has that hash. Stops at the first problem."""
    with Session(engine) as session:  # one transaction: the chain and the lookups agree
        result = record.verify(session, Vault(settings.vault_keys), workers=workers)
        if not result.ok:
            return AgainstResult(ok=False, checked=0, problem=(
                f"the record does not verify: entry {result.broken_seq}: {result.problem}"))
        published = _read_heads(heads_file)
        if isinstance(published, str):
            return AgainstResult(ok=False, checked=0, problem=published)
        checked = 0
        for start in range(0, len(published), LOOKUP_BATCH):
            batch = published[start:start + LOOKUP_BATCH]
            found = dict(session.exec(
                select(RecordEntry.seq, RecordEntry.hash)
                .where(col(RecordEntry.seq).in_({head.seq for head in batch}))
            ).all())
            for head in batch:
                stored = found.get(head.seq)
                if stored is None:
                    return AgainstResult(ok=False, checked=checked, problem=(
                        f"entry {head.seq} published at {head.published_at} is missing "
                        f"(truncated?) (heads file line {head.line})"))
                if stored != head.hash:
                    return AgainstResult(ok=False, checked=checked, problem=(
                        f"entry {head.seq} differs from the head published at "
                        f"{head.published_at} (heads file line {head.line})"))
                checked += 1
    return AgainstResult(ok=True, checked=checked)


def _read_heads(heads_file: Path) -> list[_Published] | str:
    """The published heads in file order, or the first problem with the file."""
    try:
        lines = heads_file.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return f"{heads_file} does not exist"
    except UnicodeDecodeError:
        return f"{heads_file} is not UTF-8 text"
    published: list[_Published] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        parsed = _parse(number, text)
        if isinstance(parsed, str):
            return parsed
        published.append(parsed)
    return published
