"""Export of the interaction record for the records office (§6): a folder with the entries (JSON
Lines and CSV), one metadata row per record, the chain's verification and a SHA-256 manifest.

The folder is built beside its destination and renamed into place only once it is complete and
the export is in the chain, so a failed export leaves nothing behind. Entries are streamed.
With `redact=True` subject details and free text are replaced by "[redacted]" (sharing outside
the records office); the payload digests and hashes stay those of the original content.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from bot.clock import Clock
from bot.core.context import unit_of_work
from bot.records import checkpoints, disposition
from bot.records import verify_export as verify_script
from bot.records.redaction import REDACTED as REDACTED  # tests and readers find it here
from bot.records.redaction import RedactionError, Redactor
from bot.records.retention import RecordType
from config.settings import Settings
from storage import record, tree
from storage.models import RecordEntry, RecordPayload
from storage.vault import Vault, VaultError

ENTRIES_JSONL = "entries.jsonl"
ENTRIES_CSV = "entries.csv"
METADATA_CSV = "metadata.csv"
VERIFICATION_JSON = "verification.json"
MANIFEST = "manifest.sha256"
DATA_FILES = (ENTRIES_JSONL, ENTRIES_CSV, METADATA_CSV, VERIFICATION_JSON)
# With a checkpoint key configured the export proves itself (see `_prove`): these files too.
PROOFS_JSONL = "proofs.jsonl"
CHECKPOINT_JSON = "checkpoint.json"
VERIFY_SCRIPT = "verify_export.py"
MANIFEST_SIG = "manifest.sig"
PROOF_FILES = (PROOFS_JSONL, CHECKPOINT_JSON, VERIFY_SCRIPT)
PROOF_BATCH = 1000

ENTRY_COLUMNS = ("seq", "at", "actor", "kind", "action", "case_id", "payload", "payload_digest",
                 "prev_hash", "hash")
METADATA_COLUMNS = ("seq", "record_type", "case_id", "created", "disposed", "sha256")


BATCH = 2000
PROGRESS_EVERY = 1000
CHUNK = 1 << 16


class ExportError(Exception):
    """The export cannot be made; nothing was written and nothing was recorded."""


@dataclass(frozen=True)
class ExportReport:
    out_dir: Path
    entries: int
    files: dict[str, str]  # every file the manifest lists -> its SHA-256
    manifest_sha256: str
    verification: record.VerifyResult  # of the whole record, not only the exported scope
    redacted: bool
    log_seq: int  # the "records.exported" entry that records this export
    checkpoint_size: int | None = None  # the signed checkpoint the proofs lead to, if any

    @property
    def verified(self) -> bool:
        return self.verification.ok


@dataclass(frozen=True)
class _Scope:
    case_id: str | None
    since: date | None
    until: date | None
    redact: bool
    up_to: int | None = None  # the checkpoint's size: later entries are not in its tree

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "redact": self.redact, **({"up_to_seq": self.up_to} if self.up_to else {})}


# --- export ---------------------------------------------------------------------------------


def export_records(
    *,
    engine: Engine,
    settings: Settings,
    clock: Clock,
    actor: str,
    out_dir: Path,
    case_id: str | None = None,
    since: date | None = None,
    until: date | None = None,
    redact: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Export the entries in scope into `out_dir` (absent or empty) and record the export."""
    if since and until and until < since:
        raise ExportError(f"until ({until}) is before since ({since})")
    vault = Vault(settings.vault_keys)
    existed = _check_destination(out_dir)
    signed = _fresh_checkpoint(engine, settings, clock)
    scope = _Scope(case_id=case_id, since=since, until=until, redact=redact,
                   up_to=signed.checkpoint.size if signed else None)
    proven: list[_Proven] = []
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # mkdtemp makes the folder readable by its owner only; the export keeps that mode.
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    moved = False
    try:
        started = clock.now()
        with _snapshot(engine) as session:
            verification = record.verify(session, vault)
            total = session.exec(select(func.count()).select_from(RecordEntry)
                                 .where(*_filters(scope))).one()
            redactor = Redactor(session, vault) if redact else None
            count = _write_entries(session, work, scope, vault, redactor, total, progress,
                                   proven if signed else None)
            if signed is not None:
                _prove(session, work, settings, signed, proven)
        _write_json(work / VERIFICATION_JSON, {
            "ok": verification.ok, "entries": verification.entries,
            "head_seq": verification.head_seq, "head_hash": verification.head_hash,
            "broken_seq": verification.broken_seq, "problem": verification.problem,
            "scope": scope.to_dict(), "exported_entries": count,
            "exported_at": started.isoformat(), "exported_by": actor,
        })
        names = DATA_FILES + (PROOF_FILES if signed else ())
        files = {name: _file_sha256(work / name) for name in names}
        manifest = "".join(f"{digest}  {name}\n" for name, digest in files.items())
        _write_text(work / MANIFEST, manifest)
        if signed is not None:  # the exporter vouches for the whole folder, not just entries
            _sign_manifest(work, settings, manifest)
        manifest_sha256 = _file_sha256(work / MANIFEST)
        _fsync_dir(work)
        with unit_of_work(engine, clock=clock, settings=settings, actor=actor) as ctx:
            ctx.record("admin", "records.exported", case_id=case_id, scope=scope.to_dict(),
                       entries=count, files=files, manifest_sha256=manifest_sha256,
                       destination=str(out_dir.resolve()), chain_ok=verification.ok,
                       head_seq=verification.head_seq, head_hash=verification.head_hash)
            ctx.flush_records()  # chain it now: a failure here leaves the folder unmoved
            log_seq = ctx.session.exec(select(func.max(RecordEntry.seq))).one() or 0
            _check_destination(out_dir)  # nothing appeared there meanwhile
            os.replace(work, out_dir)  # an empty folder is replaced; a non-empty one refuses
            moved = True
            _fsync_dir(out_dir.parent)
        # The commit happened on leaving the block: the export is both on disk and on record.
    except BaseException:
        if moved:  # the record of it did not commit: take the export back
            shutil.rmtree(out_dir, ignore_errors=True)
            if existed:
                with suppress(OSError):
                    out_dir.mkdir()
        raise
    finally:
        if not moved:
            shutil.rmtree(work, ignore_errors=True)
    return ExportReport(out_dir=out_dir, entries=count, files=files,
                        manifest_sha256=manifest_sha256, verification=verification,
                        redacted=redact, log_seq=log_seq,
                        checkpoint_size=signed.checkpoint.size if signed else None)


def _check_destination(out_dir: Path) -> bool:
    """True if `out_dir` exists (and is an empty folder); refuse anything else there."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return False
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder; give a new or empty folder")
    if any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty; give a new or empty folder "
                          "(an export never overwrites files)")
    return True


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only session on one connection: on PostgreSQL a REPEATABLE READ snapshot, so the
    verification, the count and the entries all describe the same state of the record. Closed
    before the export is recorded (on SQLite the read transaction holds the write lock)."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ",
                                                      postgresql_readonly=True)
        with Session(bind=connection) as session:
            yield session


def _filters(scope: _Scope) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if scope.case_id is not None:
        found.append(col(RecordEntry.case_id) == scope.case_id)
    if scope.since is not None:
        found.append(col(RecordEntry.at) >= datetime.combine(scope.since, time.min, tzinfo=UTC))
    if scope.up_to is not None:
        found.append(col(RecordEntry.seq) <= scope.up_to)
    if scope.until is not None:
        found.append(col(RecordEntry.at) < datetime.combine(scope.until, time.min, tzinfo=UTC)
                     + timedelta(days=1))
    return found


def _rows(
    session: Session, scope: _Scope
) -> Generator[tuple[RecordEntry, str | None], None, None]:
    statement = (
        select(RecordEntry, RecordPayload.body)
        .join(RecordPayload, col(RecordPayload.seq) == col(RecordEntry.seq), isouter=True)
        .where(*_filters(scope))
        .order_by(col(RecordEntry.seq))
        .execution_options(yield_per=BATCH)
    )
    with session.exec(statement) as result:  # closes a server-side cursor on early exit
        yield from result


def _write_entries(
    session: Session,
    work: Path,
    scope: _Scope,
    vault: Vault,
    redactor: Redactor | None,
    total: int,
    progress: Callable[[int, int], None] | None,
    proven: list[_Proven] | None = None,
) -> int:
    count = 0
    if progress is not None:
        progress(0, total)
    with (
        (work / ENTRIES_JSONL).open("w", encoding="utf-8", newline="\n") as jsonl,
        (work / ENTRIES_CSV).open("w", encoding="utf-8", newline="") as entries_file,
        (work / METADATA_CSV).open("w", encoding="utf-8", newline="") as metadata_file,
        closing(_rows(session, scope)) as rows,
    ):
        entries_csv = csv.writer(entries_file)
        metadata_csv = csv.writer(metadata_file)
        entries_csv.writerow(ENTRY_COLUMNS)
        metadata_csv.writerow(METADATA_COLUMNS)
        for entry, body in rows:
            plain = _open_body(vault, entry.seq, body)
            payload: dict[str, Any] | None = None if plain is None else json.loads(plain)
            original = payload
            if payload is not None and redactor is not None:
                try:
                    payload = redactor.payload(payload, entry.case_id)
                except RedactionError as exc:
                    raise ExportError(str(exc)) from None
            if proven is not None:
                proven.append(_Proven(entry.seq, entry.hash, entry.case_id, plain is None,
                                      payload != original))
            at = entry.at.isoformat()
            row = {"seq": entry.seq, "at": at, "actor": entry.actor, "kind": entry.kind,
                   "action": entry.action, "case_id": entry.case_id, "payload": payload,
                   "payload_digest": entry.payload_digest, "prev_hash": entry.prev_hash,
                   "hash": entry.hash}
            jsonl.write(record.canonical_json(row) + "\n")
            entries_csv.writerow([
                "" if row[name] is None
                else record.canonical_json(payload) if name == "payload" else row[name]
                for name in ENTRY_COLUMNS])
            record_type = RecordType.case_file if entry.case_id else RecordType.interaction
            metadata_csv.writerow([
                entry.seq, record_type.value, entry.case_id or "", at,
                "true" if plain is None else "false",
                # The original content's SHA-256 (its digest in the chain once disposed of).
                entry.payload_digest if plain is None else record.sha256_hex(plain)])
            count += 1
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count, total)
        for handle in (jsonl, entries_file, metadata_file):
            handle.flush()
            os.fsync(handle.fileno())
    if progress is not None and (count % PROGRESS_EVERY != 0 or count == 0):
        progress(count, total)
    return count


@dataclass(frozen=True)
class _Proven:
    seq: int
    hash: str
    case_id: str | None
    disposed: bool
    redacted: bool


def _fresh_checkpoint(engine: Engine, settings: Settings,
                      clock: Clock) -> checkpoints.Signed | None:
    """With a checkpoint key, a checkpoint signed now: every exported entry is in its tree."""
    if not settings.checkpoint_key_file:
        return None
    try:
        return checkpoints.make_checkpoint(engine=engine, settings=settings, clock=clock)
    except checkpoints.CheckpointError as exc:
        raise ExportError(f"no checkpoint for the export's proofs: {exc}") from None


def _prove(session: Session, work: Path, settings: Settings, signed: checkpoints.Signed,
           proven: list[_Proven]) -> None:
    """Each entry's inclusion proof against the checkpoint, what disposition removed (under
    which item, when, by whom), the checkpoint itself and the standalone verifier."""
    size = signed.checkpoint.size
    disposed = disposition.statements(session, [(p.seq, p.case_id) for p in proven
                                                 if p.disposed])
    with (work / PROOFS_JSONL).open("w", encoding="utf-8", newline="\n") as handle:
        for start in range(0, len(proven), PROOF_BATCH):
            batch = proven[start:start + PROOF_BATCH]
            proofs = tree.inclusion_proofs(session, {p.seq: p.hash for p in batch}, size)
            for item in batch:
                line: dict[str, Any] = {"seq": item.seq, "tree_size": size,
                                        "path": [h.hex() for h in proofs[item.seq].path]}
                if item.disposed:
                    line["disposed"] = disposed.get(item.seq) or "content removed (no "\
                        "disposition log names it)"
                if item.redacted:
                    line["redacted"] = True
                handle.write(record.canonical_json(line) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    content = checkpoints.export_json(session, settings, signed)
    _write_json(work / CHECKPOINT_JSON, content)
    _write_text(work / VERIFY_SCRIPT, Path(verify_script.__file__).read_text("utf-8"))


def _sign_manifest(work: Path, settings: Settings, manifest: str) -> None:
    key = checkpoints.load_private(settings)
    signature = key.sign(manifest.encode("utf-8"))
    _write_json(work / MANIFEST_SIG, {
        "key": checkpoints.fingerprint(key.public_key()),
        "signature": base64.b64encode(signature).decode("ascii")})


def _open_body(vault: Vault, seq: int, body: str | None) -> str | None:
    if body is None:
        return None
    try:
        return vault.open(body)
    except VaultError as exc:
        raise ExportError(f"entry {seq}: payload cannot be decrypted ({exc})") from None


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: Path, value: dict[str, Any]) -> None:
    _write_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- checking an export ---------------------------------------------------------------------

_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (\S(?:.*\S)?)")


def verify_export(out_dir: Path) -> list[str]:
    """Problems with an export folder: files whose SHA-256 differs from `manifest.sha256`,
    files missing from the folder or from the manifest. An empty list means intact.

    The manifest itself is covered by the `manifest_sha256` of the export's record entry."""
    if not out_dir.is_dir():
        return [f"{out_dir} is not a folder"]
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return [f"{MANIFEST} is missing"]
    problems: list[str] = []
    listed: dict[str, str] = {}
    try:
        lines = manifest.read_text("utf-8").splitlines()
    except UnicodeDecodeError:
        return [f"{MANIFEST} is not UTF-8 text"]
    for number, line in enumerate(lines, start=1):
        match = _MANIFEST_LINE.fullmatch(line)
        name = match.group(2) if match else ""
        if match is None or "/" in name or "\\" in name or name in (".", "..", MANIFEST):
            problems.append(f"{MANIFEST} line {number} is not '<sha256>  <file name>': "
                            f"{line[:80]!r}")
        elif name in listed:
            problems.append(f"{MANIFEST} lists {name} twice (line {number})")
        else:
            listed[name] = match.group(1)
    for name, expected in listed.items():
        path = out_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif _file_sha256(path) != expected:
            problems.append(f"{name} does not match its SHA-256 in {MANIFEST} (altered)")
    for path in sorted(out_dir.iterdir()):
        if path.name not in (MANIFEST, MANIFEST_SIG) and path.name not in listed:
            problems.append(f"{path.name} is not in {MANIFEST} (added)")
    return problems
