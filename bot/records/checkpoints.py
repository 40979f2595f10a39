"""Signed checkpoints of the record (NIST SP 800-53 AU-9(3), AU-10): an Ed25519 signature over
(tree size, Merkle root, chain head, time, previous checkpoint), made with a key kept outside
the database and appended to the published heads file.

A checkpoint is only signed after the entries since the previous one verified and the tree grew
consistently from it, so every checkpoint vouches for the whole record up to its size; the
routine `audit verify` therefore starts from the newest checkpoint (`verify_incremental`).

The signed text (UTF-8, every line ends with a newline):

    noticebot record checkpoint v1
    size <tree size = number of entries>
    root <Merkle root, hex>
    head <hash of entry <size>, hex>
    time <ISO 8601 time of signing>
    previous <SHA-256 hex of the previous checkpoint's text, or "none">

A heads-file line with a checkpoint also carries `seq`, `hash` and `published_at` (so the
plain head check reads it too), `checkpoint` (that text), `key` (the signing key's
fingerprint: SHA-256 hex of the raw public key) and `signature` (base64). A key change is a
hand-over line between two checkpoints. Keys, hand-overs and reading the heads file are in
`bot.records.signing`; verification, forks and making checkpoints here.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from bot.clock import Clock
from bot.core.context import unit_of_work
from bot.messages import DestinationKind, Message
from bot.records import disposition
from bot.records.heads import _append_line
from bot.records.signing import HEADER as HEADER
from bot.records.signing import PUBLIC_PREFIX as PUBLIC_PREFIX
from bot.records.signing import Checkpoint as Checkpoint
from bot.records.signing import CheckpointError as CheckpointError
from bot.records.signing import Handover as Handover
from bot.records.signing import Signed as Signed
from bot.records.signing import fingerprint as fingerprint
from bot.records.signing import generate_key_file as generate_key_file
from bot.records.signing import known_keys as known_keys
from bot.records.signing import load_private as load_private
from bot.records.signing import parse_public as parse_public
from bot.records.signing import parse_text as parse_text
from bot.records.signing import public_text as public_text
from bot.records.signing import read_checkpoints as read_checkpoints
from bot.records.signing import sign as sign
from bot.records.signing import sign_handover as sign_handover
from config.settings import Settings
from storage import merkle, record, tree
from storage.models import RecordEntry, RecordPayload
from storage.vault import Vault

CHECKPOINT_ACTOR = "noticebot:checkpoint"


# --- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeVerified:
    ok: bool
    since: int  # the checkpoint size verification started from (0: the genesis)
    entries: int  # entries checked (after `since`)
    size: int  # the record's size now
    root: str  # its Merkle root (hex), when ok
    head_hash: str
    checkpoints: int  # checkpoints read and checked
    problem: str | None = None
    broken_seq: int | None = None


def verify_incremental(session: Session, vault: Vault,
                       checkpoints: list[Signed]) -> TreeVerified:
    """From the newest checkpoint on: the stored tree has its root at its size and the chain its
    head; it is consistent with the checkpoint before it; the entries after it chain and match
    their digests; the tree grew from it to the new root (recomputed from those entries) and the
    consistency proof between the two roots verifies."""
    newest = checkpoints[-1] if checkpoints else None
    since = newest.checkpoint.size if newest else 0
    head: RecordEntry | None = None
    size = session.exec(select(func.max(RecordEntry.seq))).one() or 0

    def broken(problem: str, seq: int | None = None, entries: int = 0) -> TreeVerified:
        return TreeVerified(ok=False, since=since, entries=entries, size=size, root="",
                            head_hash="", checkpoints=len(checkpoints), problem=problem,
                            broken_seq=seq)

    try:
        if newest is not None:
            old = newest.checkpoint
            if size < old.size:
                return broken(f"the record has {size} entries, fewer than checkpoint "
                              f"{old.size} (truncated)", size + 1)
            head = session.get(RecordEntry, old.size)
            if head is None or head.hash != old.head:
                return broken(f"entry {old.size} differs from checkpoint {old.size} (history "
                              "rewritten)", old.size)
            if tree.root(session, old.size).hex() != old.root:
                return broken(f"the stored tree's root at {old.size} differs from checkpoint "
                              f"{old.size} (history rewritten)", old.size)
            # Every checkpoint before it, not only the last: two far apart can disagree.
            problem = forks(session, {"the heads file": checkpoints[:-1]}, old.size,
                            bytes.fromhex(old.root), against=f"checkpoint {old.size}")
            if problem:
                return broken(problem)
        # The walk starts at the checkpoint's own entry, so its content is checked too.
        start = max(since - 1, 0)
        link = head.prev_hash if newest is not None and head is not None else record.GENESIS_HASH
        # Bounded by `size`: entries appended meanwhile are the next verification's.
        result = record.verify_after(session, vault, seq=start, hash=link, up_to=size)
        if not result.ok:
            return broken(str(result.problem), result.broken_seq, max(result.entries - since, 0))
        builder = merkle.TreeBuilder.at(since, lambda wanted: tree.nodes(session, wanted))
        with session.exec(select(RecordEntry.hash).where(col(RecordEntry.seq) > since,
                                                         col(RecordEntry.seq) <= size)
                          .order_by(col(RecordEntry.seq))
                          .execution_options(yield_per=record.FETCH_BATCH)) as hashes:
            for entry_hash in hashes:
                builder.add(merkle.entry_leaf(entry_hash))
        new_root = builder.root()
        if size and tree.root(session, size) != new_root:
            return broken(f"the stored tree's root at {size} does not match the entries "
                          "(tree altered)", size)
        if newest is not None:
            old = newest.checkpoint
            proof = tree.consistency_proof(session, old.size, size)
            if not merkle.verify_consistency(old.size, size, bytes.fromhex(old.root), new_root,
                                             proof):
                return broken(f"the tree at {size} is not consistent with checkpoint "
                              f"{old.size}")
    except tree.TreeError as exc:
        return broken(f"the Merkle tree is incomplete: {exc}")
    return TreeVerified(ok=True, since=since, entries=size - since, size=size,
                        root=new_root.hex(), head_hash=result.head_hash,
                        checkpoints=len(checkpoints))


def forks(session: Session, sources: dict[str, list[Signed]], size: int, root: bytes, *,
          against: str = "") -> str | None:
    """Every checkpoint of every source (heads files, maybe from several publishers) against
    the others and against the tree of `size` leaves with `root` (known good): two of one size
    must agree, and each smaller one must be a prefix of it (consistency proofs from the stored
    tree, their nodes read at once). None, or the first disagreement, naming both sides."""
    against = against or f"the record's tree of {size} entries"
    by_size: dict[int, tuple[str, Signed]] = {}
    for name, found in sources.items():
        for signed in found:
            checkpoint, where = signed.checkpoint, _where(name, signed)
            seen = by_size.setdefault(checkpoint.size, (name, signed))
            if (seen[1].checkpoint.root, seen[1].checkpoint.head) != (checkpoint.root,
                                                                      checkpoint.head):
                return (f"{where} and {_where(*seen)} "
                        "disagree (a fork)")
            if checkpoint.size > size:
                return (f"{where} is beyond {against} (the record was truncated, or the "
                        "checkpoint belongs to another history)")
    plans = {n: merkle.consistency_ranges(n, size) for n in by_size if n < size}
    found_nodes = tree.nodes(session, {node for ranges in plans.values()
                                       for node in merkle.proof_nodes(ranges)})
    for n in sorted(by_size):
        name, signed = by_size[n]
        old_root = bytes.fromhex(signed.checkpoint.root)
        if not (old_root == root if n == size else merkle.verify_consistency(
                n, size, old_root, root, merkle.hashes_of(plans[n], found_nodes))):
            return (f"{against} is not consistent with {_where(name, signed)} (two "
                    "checkpoints disagree: a fork)")
    return None


def _where(name: str, signed: Signed) -> str:
    return f"checkpoint {signed.checkpoint.size} ({name}, line {signed.line})"


def verify_full(session: Session, vault: Vault, checkpoints: list[Signed], *,
                workers: int | None = None) -> tuple[record.VerifyResult, str | None]:
    """`audit verify --full`: every entry, its payload and the whole tree in one pass over the
    rows (`record.verify`), then each checkpoint's root and head at its size and the stored
    tree's root now. The walk's result, and None or the first problem with the tree."""
    result = record.verify(session, vault, workers=workers,
                           marks={signed.checkpoint.size for signed in checkpoints})
    return result, verify_full_tree(session, checkpoints, result) if result.ok else None


def verify_full_tree(session: Session, checkpoints: list[Signed],
                     walked: record.VerifyResult | None = None) -> str | None:
    """The tree recomputed from every entry hash: each checkpoint's root and head at its size,
    and the stored tree's root now. None if all agree, else the first problem. With `walked`
    (a verification that hashed the tree as it went) nothing is read again."""
    if walked is None or walked.root is None:
        size, root, marks = _hash_all(session, {s.checkpoint.size for s in checkpoints})
    else:
        size, root, marks = walked.head_seq, walked.root, walked.marks
    for signed in sorted(checkpoints, key=lambda s: s.checkpoint.size):
        checkpoint = signed.checkpoint
        mark = marks.get(checkpoint.size)
        if mark is not None and mark != (checkpoint.head, bytes.fromhex(checkpoint.root)):
            return (f"checkpoint {checkpoint.size} does not match the record (entries up to "
                    f"{checkpoint.size} were altered, or the checkpoint belongs to another "
                    "history)")
    if size and checkpoints and checkpoints[-1].checkpoint.size > size:
        return (f"the record has {size} entries, fewer than checkpoint "
                f"{checkpoints[-1].checkpoint.size} (truncated)")
    try:
        if size and tree.root(session, size) != root:
            return f"the stored tree's root at {size} does not match the entries"
    except tree.TreeError as exc:
        return f"the Merkle tree is incomplete: {exc}"
    return None


def _hash_all(session: Session,
              sizes: set[int]) -> tuple[int, bytes, dict[int, tuple[str, bytes]]]:
    """The tree over every entry hash in one streamed pass: its size, root, and the head and
    root at each of `sizes`."""
    # The right edge as a plain list of hashes (one per set bit of the size, largest first):
    # this loop runs once per entry of the whole record, so it avoids TreeBuilder's bookkeeping.
    sha256, fromhex = hashlib.sha256, bytes.fromhex
    edge: list[bytes] = []
    size = 0
    marks: dict[int, tuple[str, bytes]] = {}
    statement = (sqlalchemy.select(col(RecordEntry.seq), col(RecordEntry.hash))
                 .order_by(col(RecordEntry.seq)).execution_options(yield_per=record.FETCH_BATCH))
    with session.connection().execute(statement) as rows:  # closes a server cursor early
        for seq, entry_hash in rows.tuples():
            node = sha256(b"\x00" + fromhex(entry_hash)).digest()
            for _ in range((size ^ (size + 1)).bit_length() - 1):  # trailing ones: merges
                node = sha256(b"\x01" + edge.pop() + node).digest()
            edge.append(node)
            size += 1
            if seq in sizes:
                marks[seq] = (entry_hash, merkle.fold(edge))
    return size, merkle.fold(edge), marks


@dataclass(frozen=True)
class Proof:
    seq: int
    checkpoint: Signed
    leaf: str  # hex
    path: list[str]  # hex, nearest the leaf first
    verified: bool  # the path leads from the entry's leaf to the checkpoint's root
    content: str  # "present", or what disposition did with it


def prove(session: Session, seq: int, signed: Signed) -> Proof:
    """Entry `seq`'s inclusion proof against a checkpoint, checked, and whether its content is
    still there (a disposed entry's leaf stays: its proof still verifies)."""
    size = signed.checkpoint.size
    entry = session.get(RecordEntry, seq)
    if entry is None or seq > size:
        raise CheckpointError(f"entry {seq} is not under checkpoint {size}")
    found = tree.inclusion_proofs(session, {seq: entry.hash}, size)[seq]
    verified = merkle.verify_inclusion(seq - 1, size, found.leaf, found.path,
                                       bytes.fromhex(signed.checkpoint.root))
    content = "present"
    if session.get(RecordPayload, seq) is None:
        content = disposition.statements(session, [(seq, entry.case_id)]).get(
            seq, "content missing, and no disposition log names it")
    return Proof(seq=seq, checkpoint=signed, leaf=found.leaf.hex(),
                 path=[h.hex() for h in found.path], verified=verified, content=content)


def _verify_everything(session: Session, vault: Vault) -> TreeVerified:
    result, problem = verify_full(session, vault, [])
    problem = problem if result.ok else result.problem
    if not result.ok or problem is not None:
        return TreeVerified(ok=False, since=0, entries=result.entries, size=result.head_seq,
                            root="", head_hash="", checkpoints=0, problem=problem,
                            broken_seq=result.broken_seq)
    size = result.head_seq
    return TreeVerified(ok=True, since=0, entries=size, size=size,
                        root=tree.root(session, size).hex(), head_hash=result.head_hash,
                        checkpoints=0)


# --- making one -----------------------------------------------------------------------------


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """One checkpointer at a time per heads file: two would both chain to the same one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(f"{target}.lock", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def make_checkpoint(*, engine: Engine, settings: Settings, clock: Clock,
                    target: Path | None = None) -> Signed:
    """Verify from the newest checkpoint, sign the new one, append it to the heads file, record
    it, and post its short form to the records channel."""
    key = load_private(settings)
    target = target or _heads_file(settings)
    keys = known_keys(settings)
    with _locked(target):
        existing = read_checkpoints(target, keys)
        if existing and existing[-1].key != fingerprint(key.public_key()):
            raise CheckpointError(
                f"the newest checkpoint in {target} is signed by key {existing[-1].key[:16]}…, "
                f"not by this key ({fingerprint(key.public_key())[:16]}…): after a key "
                "hand-over, NOTICEBOT_CHECKPOINT_KEY_FILE must be the new key")
        with Session(engine) as session:
            if existing:
                verified = verify_incremental(session, Vault(settings.vault_keys), existing)
            else:  # the first one: the whole record, in parallel ranges when it is long
                verified = _verify_everything(session, Vault(settings.vault_keys))
        if not verified.ok:
            where = f"entry {verified.broken_seq}: " if verified.broken_seq else ""
            raise CheckpointError(f"the record does not verify ({where}{verified.problem}); "
                                  "no checkpoint was signed")
        if verified.size == 0:
            raise CheckpointError("the record is empty; there is nothing to sign")
        checkpoint = Checkpoint(size=verified.size, root=verified.root,
                                head=verified.head_hash, time=clock.now().isoformat(),
                                previous=existing[-1].checkpoint.digest() if existing else "none")
        signed = sign(key, checkpoint)
        try:
            _append_line(target, signed.to_line())
        except OSError as exc:
            raise CheckpointError(f"cannot append to {target}: {exc}") from None
    with unit_of_work(engine, clock=clock, settings=settings, actor=CHECKPOINT_ACTOR) as ctx:
        ctx.record("admin", "records.checkpoint_signed", size=checkpoint.size,
                   root=checkpoint.root, head=checkpoint.head, key=signed.key,
                   target=str(target))
        if settings.records_channel:
            ctx.send(DestinationKind.channel, settings.records_channel, Message(
                text=f"Record {signed.checkpoint.short()} signed by key {signed.key[:16]}",
                title="Record checkpoint", section="§6"))
    return signed


def hand_over(*, engine: Engine, settings: Settings, clock: Clock, new_key_file: Path,
              target: Path | None = None) -> tuple[Signed, Handover, Signed]:
    """Rotate the checkpoint key: a last checkpoint under the current key (everything since
    the one before verified), the current key's signed hand-over naming the new key and that
    checkpoint, and the same tree signed by the new key, chained to it. Returns the three."""
    old_key = load_private(settings)
    new_key = load_private(settings, new_key_file)
    new_public = new_key.public_key()
    if fingerprint(new_public) == fingerprint(old_key.public_key()):
        raise CheckpointError(f"{new_key_file} is the current key; generate a new one")
    last = make_checkpoint(engine=engine, settings=settings, clock=clock, target=target)
    target = target or _heads_file(settings)
    keys = {**known_keys(settings), fingerprint(new_public): new_public}
    with _locked(target):
        existing = read_checkpoints(target, keys)
        if not existing or existing[-1].checkpoint != last.checkpoint:
            raise CheckpointError(f"another checkpoint was appended to {target} meanwhile; "
                                  "run the hand-over again")
        now = clock.now().isoformat()
        handover = sign_handover(old_key, new_public, last.checkpoint.digest(), now)
        first = sign(new_key, replace(last.checkpoint, time=now,
                                      previous=last.checkpoint.digest()))
        try:  # one write: the hand-over never stands without the checkpoint it admits
            _append_line(target, handover.to_line() + "\n" + first.to_line())
        except OSError as exc:
            raise CheckpointError(f"cannot append to {target}: {exc}") from None
    with unit_of_work(engine, clock=clock, settings=settings, actor=CHECKPOINT_ACTOR) as ctx:
        ctx.record("admin", "records.checkpoint_key_handed_over", old=handover.old,
                   new=handover.new, size=last.checkpoint.size, target=str(target))
    return last, handover, replace(first, handover=handover)


def export_json(session: Session, settings: Settings, signed: Signed) -> dict[str, Any]:
    """An export's `checkpoint.json`: the signed checkpoint and its public key, the checkpoint
    before it with the consistency proof between the two (two that disagree are a fork) and
    the key hand-over if the key changed there, and consistency proofs from every earlier
    published checkpoint (for `verify_export.py --heads`)."""
    size = signed.checkpoint.size
    public = public_text(load_private(settings).public_key())
    content: dict[str, Any] = {
        "checkpoint": signed.checkpoint.text(), "key": signed.key, "signature": signed.signature,
        "public_key": public}
    # The checkpoint before it, with the consistency proof between the two: a recipient sees
    # the new tree extends the old one (two checkpoints that disagree are a fork).
    published = read_checkpoints(Path(settings.heads_file),
                                             known_keys(settings))
    earlier = [c for c in published if c.checkpoint.digest() == signed.checkpoint.previous]
    if earlier:
        before = earlier[-1]
        content["previous"] = {"checkpoint": before.checkpoint.text(), "key": before.key,
                               "signature": before.signature}
        content["consistency"] = [h.hex() for h in tree.consistency_proof(
            session, before.checkpoint.size, size)] if before.checkpoint.size < size else []
    newest = next((c for c in reversed(published) if c.checkpoint == signed.checkpoint), None)
    if newest is not None and newest.handover is not None:  # the key changed here
        content["handover"] = newest.handover.to_json()
    # From every earlier published checkpoint to this one: a recipient holding a heads file
    # checks each of its checkpoints against this export (`verify_export.py --heads`).
    plans = {n: merkle.consistency_ranges(n, size)
             for n in {c.checkpoint.size for c in published} if n < size}
    found = tree.nodes(session, {node for ranges in plans.values()
                                 for node in merkle.proof_nodes(ranges)})
    content["consistency_from"] = {str(n): [h.hex() for h in merkle.hashes_of(ranges, found)]
                                   for n, ranges in sorted(plans.items())}
    return content


def _heads_file(settings: Settings) -> Path:
    if not settings.heads_file:
        raise CheckpointError("NOTICEBOT_HEADS_FILE is not set (or give --to FILE)")
    return Path(settings.heads_file)


def newest_checkpoint(settings: Settings) -> Signed | None:
    if not settings.heads_file:
        return None
    found = read_checkpoints(Path(settings.heads_file), known_keys(settings))
    return found[-1] if found else None
