"""The record's Merkle tree in the database (`record_tree_node`): the nodes an append adds,
roots and proofs read from the stored complete subtrees. Hashing rules: `storage.merkle`."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, and_, or_, select, text
from sqlmodel import Session, col

from storage import merkle
from storage.merkle import Node
from storage.models import RecordTreeNode

LOOKUP_BATCH = 500


class TreeError(Exception):
    """A node the tree should have is not stored (the tree is incomplete or was cut)."""


_INSERT = text("INSERT INTO record_tree_node (level, idx, hash) VALUES (:level, :idx, :hash)")
# Right edges of recent trees, by the hash of their last entry. A tree is a function of its
# entries and entry n's chain hash fixes entries 1..n, so the edge found under the hash an
# append chains to is that tree's edge, whichever transaction or process computed it (one
# rolled back leaves an edge no later append chains to). It spares the append any read.
_EDGES: OrderedDict[str, list[bytes]] = OrderedDict()
_EDGES_KEPT = 16
_EDGES_LOCK = threading.Lock()


def new_nodes(session: Session, first_seq: int, entry_hashes: list[str],
              prev_hash_hex: str) -> list[dict[str, object]]:
    """The rows (level, idx, hash) that appending consecutive entries from `first_seq` on (the
    first chained to `prev_hash_hex`) adds to the tree: the leaves and the subtrees they
    complete. The caller holds the chain's append lock and writes them in its transaction. The
    tree's right edge is read only when no recent append left it here."""
    size = first_seq - 1
    with _EDGES_LOCK:
        edge = _EDGES.get(prev_hash_hex) if size else []
    if edge is None:
        wanted = merkle.range_nodes(0, size)
        found = nodes(session, wanted)
        edge = [found[node] for node in wanted]
    rows: list[dict[str, object]] = []
    for offset, entry_hash_hex in enumerate(entry_hashes):
        made, edge = merkle.extend(edge, size + offset, merkle.entry_leaf(entry_hash_hex))
        rows += [{"level": level, "idx": idx, "hash": digest.hex()}
                 for level, idx, digest in made]
    if entry_hashes:
        with _EDGES_LOCK:
            _EDGES[entry_hashes[-1]] = edge
            while len(_EDGES) > _EDGES_KEPT:
                _EDGES.popitem(last=False)
    return rows


def insert_nodes(connection: Connection | Session, rows: list[dict[str, object]]) -> None:
    if rows:
        connection.execute(_INSERT, rows)


def nodes(connection: Connection | Session, wanted: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of `wanted`, one query per LOOKUP_BATCH nodes; TreeError names the
    first one missing."""
    wanted = sorted(set(wanted))
    found: dict[Node, bytes] = {}
    for start in range(0, len(wanted), LOOKUP_BATCH):
        by_level: dict[int, list[int]] = {}
        for level, idx in wanted[start:start + LOOKUP_BATCH]:
            by_level.setdefault(level, []).append(idx)
        # One term per level, each an index search on both SQLite and PostgreSQL (a row-value
        # IN would make SQLite scan the table).
        rows = connection.execute(
            select(col(RecordTreeNode.level), col(RecordTreeNode.idx), col(RecordTreeNode.hash))
            .where(or_(*(and_(col(RecordTreeNode.level) == level,
                              col(RecordTreeNode.idx).in_(indexes))
                         for level, indexes in by_level.items()))))
        for level, idx, digest in rows:
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
