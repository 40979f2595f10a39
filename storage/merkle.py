"""A Merkle tree over the record's entry hashes, hashed as Certificate Transparency does
(RFC 9162 §2.1, the same as RFC 6962 §2.1): leaf = SHA-256(0x00 || data), node =
SHA-256(0x01 || left || right), and a tree of n leaves splits at the largest power of two
below n. A leaf's data is its entry's 32-byte hash, leaf index = seq - 1.

Only complete subtrees are stored (`record_tree_node`: level, index, hash; a node at level l and
index i covers leaves [i·2^l, (i+1)·2^l)). Every range a proof needs is a run of such subtrees, so
a proof reads O(log n) stored nodes and hashes nothing but its own path. The pure functions here
(ranges, proofs, their verification) know nothing of the database; `extend` makes the nodes an
append adds from the tree's right edge, and `TreeBuilder` does the same leaf after leaf for the
migration's backfill, the bulk seeding and incremental verification.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Node = tuple[int, int]  # (level, index) of a stored complete subtree
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162: the hash of an empty tree


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def entry_leaf(entry_hash_hex: str) -> bytes:
    """The leaf hash of a record entry, from its hex hash."""
    return leaf_hash(bytes.fromhex(entry_hash_hex))


def _split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """The stored complete subtrees that make up MTH(D[start:end]) as RFC 9162 splits it, left
    to right. Only ranges that start on a multiple of their split are asked for: those a root,
    an inclusion proof or a consistency proof needs."""
    found: list[Node] = []
    while start < end:
        size = end - start
        level = size.bit_length() - 1  # the largest power of two ≤ size comes first
        if start % (1 << level):
            raise ValueError(f"range [{start}, {end}) is not a right-edge range")
        found.append((level, start >> level))
        start += 1 << level
    return found


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its complete subtrees (left to right): each joins what is right of it."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs make the audit path of leaf `index` in a tree of `size` leaves
    (RFC 6962 §2.1.1 PATH), nearest the leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs prove a tree of `old` leaves is a prefix of the one of `new`
    (RFC 6962 §2.1.2 SUBPROOF), in proof order."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    ranges: list[tuple[int, int]] = []
    start, end, complete = 0, new, True
    m = old
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def proof_nodes(ranges: Iterable[tuple[int, int]]) -> set[Node]:
    return {node for start, end in ranges for node in range_nodes(start, end)}


def hashes_of(ranges: Iterable[tuple[int, int]], nodes: Mapping[Node, bytes]) -> list[bytes]:
    return [fold([nodes[node] for node in range_nodes(start, end)]) for start, end in ranges]


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       path: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2."""
    if not 0 < old <= new:
        return False
    if old == new:
        return not path and old_root == new_root
    proof = list(path)
    if old & (old - 1) == 0:  # a power of two: the old root is the first subtree
        proof.insert(0, old_root)
    if not proof:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


@dataclass
class TreeBuilder:
    """Grows a tree leaf by leaf, keeping only its right edge (one complete subtree per set bit
    of the size); `add` returns the complete subtrees the new leaf completes, itself first."""

    size: int = 0
    edge: list[tuple[int, bytes]] = field(default_factory=list)  # (level, hash), largest first

    @classmethod
    def at(cls, size: int, nodes: Callable[[list[Node]], Mapping[Node, bytes]]) -> TreeBuilder:
        """Resume at `size` from the stored subtrees of its right edge."""
        wanted = range_nodes(0, size)
        found = nodes(wanted)
        return cls(size=size, edge=[(level, found[(level, index)]) for level, index in wanted])

    def add(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        index = self.size
        made = [(0, index, leaf)]
        level, current = 0, leaf
        while self.edge and self.edge[-1][0] == level:
            _, left = self.edge.pop()
            current = node_hash(left, current)
            level += 1
            made.append((level, index >> level, current))
        self.edge.append((level, current))
        self.size += 1
        return made

    def root(self) -> bytes:
        return fold([h for _, h in self.edge])


def extend(edge: Sequence[bytes], size: int,
           leaf: bytes) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    """Append `leaf` to the tree of `size` leaves whose right edge is `edge` (the hashes of
    `range_nodes(0, size)`): the nodes it completes, itself first, and the new right edge."""
    remaining = list(edge)
    made = [(0, size, leaf)]
    node = leaf
    for level in range(1, (size ^ (size + 1)).bit_length()):  # one merge per trailing 1 bit
        node = node_hash(remaining.pop(), node)
        made.append((level, size >> level, node))
    remaining.append(node)
    return made, remaining
