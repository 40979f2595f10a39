"""The record's Merkle tree (RFC 9162 hashing): roots, inclusion and consistency proofs
against a direct recursive definition, and the stored tree kept by every append."""

from __future__ import annotations

import hashlib
from functools import partial

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, func, select

from bot.core.service import Core
from storage import merkle, record, tree
from storage.db import transaction
from storage.models import RecordEntry, RecordTreeNode
from tests.conftest import START
from tests.helpers import open_case, run_together
from tests.storage.test_record import append_batch, postgres_only

LEAVES = [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(70)]


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written straight from the definition."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def built(size: int) -> dict[merkle.Node, bytes]:
    builder = merkle.TreeBuilder()
    found: dict[merkle.Node, bytes] = {}
    for leaf in LEAVES[:size]:
        for level, idx, digest in builder.add(leaf):
            found[(level, idx)] = digest
    assert builder.root() == mth(LEAVES[:size])
    return found


def test_rfc9162_domain_separation() -> None:
    # A leaf and a node over the same bytes never collide (0x00 vs 0x01 prefixes).
    data = b"\x11" * 64
    assert merkle.leaf_hash(data) != hashlib.sha256(b"\x01" + data).digest()
    assert merkle.leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


def test_roots_and_incremental_nodes_match_the_definition() -> None:
    for size in range(1, len(LEAVES) + 1):
        nodes = built(size)
        assert merkle.fold([nodes[n] for n in merkle.range_nodes(0, size)]) == mth(LEAVES[:size])
        # The append path's view (the right edge before it) makes the same nodes and edge.
        index = size - 1
        edge = [nodes[n] for n in merkle.range_nodes(0, index)]
        made, after = merkle.extend(edge, index, LEAVES[index])
        assert [(level, idx) for level, idx, _ in made] == [
            (level, idx) for level, idx in nodes if (idx + 1) << level == size]
        assert all(nodes[(level, idx)] == digest for level, idx, digest in made)
        assert after == [nodes[n] for n in merkle.range_nodes(0, size)]


def test_inclusion_proofs_verify_and_reject_everything_else() -> None:
    for size in range(1, 40):
        nodes = built(size)
        root = mth(LEAVES[:size])
        for index in range(size):
            path = merkle.hashes_of(merkle.inclusion_ranges(index, size), nodes)
            assert len(path) <= size.bit_length()
            assert merkle.verify_inclusion(index, size, LEAVES[index], path, root)
            other = LEAVES[(index + 1) % len(LEAVES)]
            assert not merkle.verify_inclusion(index, size, other, path, root)
            if size > 1:
                assert not merkle.verify_inclusion((index + 1) % size, size, LEAVES[index],
                                                   path, root)
                assert not merkle.verify_inclusion(index, size, LEAVES[index], path[:-1], root)


def test_consistency_proofs_verify_and_detect_forks() -> None:
    for new in range(1, 40):
        nodes = built(new)
        new_root = mth(LEAVES[:new])
        for old in range(1, new + 1):
            path = merkle.hashes_of(merkle.consistency_ranges(old, new), nodes)
            old_root = mth(LEAVES[:old])
            assert merkle.verify_consistency(old, new, old_root, new_root, path), (old, new)
            forked = mth([LEAVES[0], *LEAVES[2:old + 1]]) if old > 1 else LEAVES[69]
            assert not merkle.verify_consistency(old, new, forked, new_root, path)
            if old < new:
                assert not merkle.verify_consistency(old, new, old_root, LEAVES[0], path)


def test_every_append_stores_its_leaf_and_completed_subtrees(core: Core, engine: Engine) -> None:
    open_case(core)
    with Session(engine) as session:
        entries = session.exec(select(RecordEntry.seq, RecordEntry.hash)
                               .order_by(col(RecordEntry.seq))).all()
        size = len(entries)
        assert size > 3
        expected = mth([merkle.entry_leaf(h) for _, h in entries])
        assert tree.root(session, size) == expected
        stored = session.exec(select(func.count()).select_from(RecordTreeNode)).one()
        assert stored == 2 * size - bin(size).count("1")  # every complete subtree, once
        proofs = tree.inclusion_proofs(session, dict(entries), size)
        for seq, proof in proofs.items():
            assert merkle.verify_inclusion(seq - 1, size, proof.leaf, proof.path, expected)
        for old in range(1, size + 1):
            path = tree.consistency_proof(session, old, size)
            assert merkle.verify_consistency(old, size, tree.root(session, old), expected, path)


def test_a_missing_node_is_named(bare_core: Core) -> None:
    with Session(bare_core.engine) as session, pytest.raises(tree.TreeError,
                                                              match="level 0, index 0"):
        tree.root(session, 1)


def assert_tree_matches_entries(engine: Engine) -> None:
    with Session(engine) as session:
        entries = session.exec(select(RecordEntry.hash).order_by(col(RecordEntry.seq))).all()
        stored = session.exec(select(func.count()).select_from(RecordTreeNode)).one()
        assert tree.root(session, len(entries)) == mth([merkle.entry_leaf(h) for h in entries])
    assert stored == 2 * len(entries) - bin(len(entries)).count("1")


@postgres_only
def test_concurrent_writers_grow_one_tree(bare_core: Core) -> None:
    engine = bare_core.engine
    run_together(*[partial(append_batch, engine, w, 20) for w in range(6)])
    assert_tree_matches_entries(engine)


@postgres_only
def test_postgres_refuses_changing_the_tree(bare_core: Core) -> None:
    append_batch(bare_core.engine, 0, 3)
    for statement in ("UPDATE record_tree_node SET hash = repeat('0', 64) WHERE level = 0",
                      "DELETE FROM record_tree_node WHERE level = 1",
                      "TRUNCATE record_tree_node"):
        with pytest.raises(DBAPIError, match="append-only"), \
                bare_core.engine.begin() as connection:
            connection.execute(text(statement))
    assert_tree_matches_entries(bare_core.engine)


def test_a_rolled_back_append_leaves_no_trace_in_the_tree(bare_core: Core) -> None:
    engine = bare_core.engine
    append_batch(engine, 0, 5)
    with pytest.raises(RuntimeError), transaction(engine) as session:
        record.append(session, at=START, actor="gone", kind="state", action="x", payload={})
        raise RuntimeError("rolled back after the tree was extended in memory")
    append_batch(engine, 1, 6)  # the same seqs, another history
    assert_tree_matches_entries(engine)


def test_appends_after_writes_the_process_did_not_see(bare_core: Core) -> None:
    engine = bare_core.engine
    append_batch(engine, 0, 3)
    tree._EDGES.clear()  # as if another process had appended last
    append_batch(engine, 1, 9)
    assert_tree_matches_entries(engine)
