"""The record's Merkle tree in the database (`record_tree_node`): the nodes an append adds,
roots and proofs read from the stored complete subtrees. Hashing rules: `storage.merkle`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, select, text
from sqlmodel import Session, col

from storage import merkle
from storage.merkle import Node
from storage.models import RecordTreeNode

_TABLE = RecordTreeNode.__table__  # type: ignore[attr-defined]
LOOKUP_BATCH = 500


class TreeError(Exception):
    """A node the tree should have is not stored (the tree is incomplete or was cut)."""


# Plain statements: built once and cached by the driver layer, they cost a fraction of a
# constructed SELECT/INSERT on this hot path (every append runs them).
_SIBLING = text("SELECT hash FROM record_tree_node WHERE level = :level AND idx = :idx")
_INSERT = text("INSERT INTO record_tree_node (level, idx, hash) VALUES (:level, :idx, :hash)")


def add_leaf(session: Session, seq: int, entry_hash_hex: str) -> None:
    """Store the leaf of entry `seq` and the subtrees it completes, in the caller's transaction
    (which already holds the chain's append lock). Reads one stored node per subtree it
    completes (on average one), writes them in one statement."""
    index = seq - 1
    siblings: dict[Node, bytes] = {}
    for level, idx in merkle.left_siblings(index):
        digest = session.execute(_SIBLING, {"level": level, "idx": idx}).scalar()
        if digest is None:
            raise TreeError(f"tree node (level {level}, index {idx}) is missing")
        siblings[(level, idx)] = bytes.fromhex(digest)
    made = merkle.completed(index, merkle.entry_leaf(entry_hash_hex), siblings)
    session.execute(_INSERT, [{"level": level, "idx": idx, "hash": digest.hex()}
                              for level, idx, digest in made])


def nodes(connection: Connection | Session, wanted: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of `wanted`; TreeError names the first one missing."""
    wanted = sorted(set(wanted))
    found: dict[Node, bytes] = {}
    for start in range(0, len(wanted), LOOKUP_BATCH):
        batch = wanted[start:start + LOOKUP_BATCH]
        by_level: dict[int, list[int]] = {}
        for level, idx in batch:
            by_level.setdefault(level, []).append(idx)
        for level, indexes in by_level.items():
            rows = connection.execute(
                select(col(RecordTreeNode.idx), col(RecordTreeNode.hash))
                .where(col(RecordTreeNode.level) == level, col(RecordTreeNode.idx).in_(indexes)))
            for idx, digest in rows:
                found[(level, idx)] = bytes.fromhex(digest)
    for node in wanted:
        if node not in found:
            level, idx = node
            raise TreeError(f"tree node (level {level}, index {idx}) is missing")
    return found


def root(connection: Connection | Session, size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    return _root(nodes(connection, merkle.range_nodes(0, size)), size)


def _root(found: Mapping[Node, bytes], size: int) -> bytes:
    return merkle.fold([found[n] for n in merkle.range_nodes(0, size)])


@dataclass(frozen=True)
class Inclusion:
    seq: int
    size: int
    leaf: bytes
    path: list[bytes]


def inclusion_proofs(connection: Connection | Session, entries: Mapping[int, str],
                     size: int) -> dict[int, Inclusion]:
    """Proofs for entries {seq: entry hash hex} in the tree of `size` leaves, from one read of
    all the nodes they need."""
    plans = {seq: merkle.inclusion_ranges(seq - 1, size) for seq in entries}
    found = nodes(connection, {n for ranges in plans.values() for n in merkle.proof_nodes(ranges)})
    return {seq: Inclusion(seq=seq, size=size, leaf=merkle.entry_leaf(entries[seq]),
                           path=merkle.hashes_of(ranges, found))
            for seq, ranges in plans.items()}


def consistency_proof(connection: Connection | Session, old: int, new: int) -> list[bytes]:
    ranges = merkle.consistency_ranges(old, new)
    return merkle.hashes_of(ranges, nodes(connection, merkle.proof_nodes(ranges)))


def stored_leaves(connection: Connection | Session, low: int, high: int) -> dict[int, str]:
    """Leaf hashes (hex) of entries low..high (seq), as stored."""
    rows = connection.execute(
        select(col(RecordTreeNode.idx), col(RecordTreeNode.hash))
        .where(col(RecordTreeNode.level) == 0, col(RecordTreeNode.idx) >= low - 1,
               col(RecordTreeNode.idx) <= high - 1))
    return {idx + 1: digest for idx, digest in rows}
