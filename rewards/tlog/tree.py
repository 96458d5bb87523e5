"""Merkle trees of the verifiable ledger: roots and proofs as RFC 9162 section 2.1 defines
them (docs/verification.md). Hashing comes from the offline verifier, so that the bytes
the gateway proves and the bytes a backer checks are computed by the same lines."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from heliod.rewards.tlog.verify import EMPTY_ROOT, HASH_SIZE, node_hash


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """The complete subtrees of a list of leaf hashes, built once: the root of any size
    and any number of inclusion and consistency proofs then cost O(log² n) lookups."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        level = list(leaf_hashes)
        # levels[h][i]: the root of the perfect subtree of leaves [i·2^h, (i+1)·2^h).
        self.levels: list[list[bytes]] = [level]
        self._folds: dict[tuple[int, int], bytes] = {}  # right-edge subtrees already folded
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self.levels.append(level)

    @classmethod
    def from_levels(cls, levels: Sequence[Sequence[bytes]]) -> MerkleTree:
        """A tree from the `levels` of one built earlier (and stored), without hashing."""
        tree = cls.__new__(cls)
        tree.levels = [level if isinstance(level, list) else list(level) for level in levels]
        tree.levels = tree.levels or [[]]
        tree._folds = {}
        for low, high in zip(tree.levels, tree.levels[1:], strict=False):
            if len(high) != len(low) // 2:
                raise ValueError("each level has half the nodes of the one below")
        if len(tree.levels[-1]) > 1:
            raise ValueError("the levels stop before the top of the tree")
        return tree

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self.levels[0])

    def _range(self, lo: int, hi: int) -> bytes:
        # [lo, hi) is a subtree of RFC 9162's recursion: lo is a multiple of the largest
        # power of two not above hi - lo, so it is perfect subtrees folded from the right.
        n = hi - lo
        if n & (n - 1) == 0:
            h = n.bit_length() - 1
            return self.levels[h][lo >> h]
        root = self._folds.get((lo, hi))
        if root is None:
            parts: list[bytes] = []
            at = lo
            while at < hi:
                h = (hi - at).bit_length() - 1
                parts.append(self.levels[h][at >> h])
                at += 1 << h
            root = parts.pop()
            while parts:
                root = node_hash(parts.pop(), root)
            self._folds[(lo, hi)] = root
        return root

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """The root of the first `size` leaves (all by default); H("") when empty."""
        n = self._size(size)
        return self._range(0, n) if n else EMPTY_ROOT

    def inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        """The inclusion proof of leaf `index` in the tree of the first `size` leaves."""
        n = self._size(size)
        if not 0 <= index < n:
            raise ValueError(f"leaf index {index} is outside a tree of size {n}")
        path: list[bytes] = []
        lo, hi = 0, n
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._range(lo, lo + k))
                lo += k
        path.reverse()
        return path

    def consistency(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The consistency proof from the first `size1` leaves to the first `size2`
        (RFC 9162, 2.1.4.1); 0 < size1 ≤ size2."""
        n = self._size(size2)
        if not 0 < size1 <= n:
            raise ValueError(f"consistency from size {size1} to {n}: need 0 < first ≤ second")
        path: list[bytes] = []
        lo, hi, m, whole = 0, n, size1, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= lo + k - lo:
                path.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._range(lo, lo + k))
                lo, m, whole = lo + k, m - k, False
        if not whole:
            path.append(self._range(lo, hi))
        path.reverse()
        return path


def tree_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root of a tree of these leaf hashes; H("") for none."""
    return MerkleTree(leaf_hashes).root()


def inclusion_proof(
    leaf_hashes: Sequence[bytes], index: int, size: int | None = None
) -> list[bytes]:
    """The inclusion proof of leaf `index` in the tree of the first `size` leaf hashes."""
    return MerkleTree(leaf_hashes[: len(leaf_hashes) if size is None else size]).inclusion(index)


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """The consistency proof from the first `size1` leaf hashes to the first `size2`."""
    if size2 > len(leaf_hashes):
        raise ValueError(f"tree size {size2} is beyond the {len(leaf_hashes)} leaves")
    return MerkleTree(leaf_hashes[:size2]).consistency(size1)


def group_roots(leaf_hashes: Sequence[bytes], height: int) -> list[bytes]:
    """The roots of consecutive groups of 2^height leaves (the last one may be shorter).

    Each is a node of the whole tree (a full group is a perfect subtree; the last one is
    on its right edge), and the tree over these roots is the whole tree above them: a
    store that keeps them rebuilds any leaf's proof from its group's leaves alone
    (`grouped_inclusion`), as C2SP tlog-tiles keeps tiles of hashes."""
    width = 1 << height
    full = len(leaf_hashes) - len(leaf_hashes) % width
    # The full groups level by level over all of them at once: pairs never straddle two
    # groups, since each group starts at a multiple of its (even) width.
    level = list(leaf_hashes[:full])
    for _ in range(height):
        level = list(map(node_hash, level[0::2], level[1::2]))
    if full < len(leaf_hashes):
        level.append(tree_root(leaf_hashes[full:]))
    return level


def grouped_inclusion(
    index: int,
    size: int,
    group: Sequence[bytes],
    roots: Sequence[bytes] | MerkleTree,
    height: int,
) -> list[bytes]:
    """The inclusion proof of leaf `index` of a tree of `size` leaves, from the leaf
    hashes of its group (`group`: leaves [g·2^height, …) of that group) and the roots of
    every group (`group_roots`), or the tree over them (`MerkleTree.from_levels` of its
    stored levels, which saves hashing them again)."""
    width = 1 << height
    g = index // width
    upper = roots if isinstance(roots, MerkleTree) else MerkleTree(roots)
    if not 0 <= index < size or upper.size != -(-size // width):
        raise ValueError(f"leaf {index} of {size} does not fit {upper.size} groups of {width}")
    if len(group) != min(width, size - g * width):
        raise ValueError(f"group {g} has {len(group)} leaf hashes")
    inner = MerkleTree(group)
    if inner.root() != upper.levels[0][g]:
        raise ValueError(f"the leaves of group {g} do not give its stored root")
    return inner.inclusion(index - g * width) + upper.inclusion(g)


def edge_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of RFC 9162's tree, from the leaves up to `[root]`, where a level's
    unpaired last node is carried up unhashed: the tree the RFC's recursion defines, drawn
    level by level. Leaf `i`'s inclusion proof is then `edge_inclusion(levels, i)`."""
    level = list(leaf_hashes)
    levels = [level]
    while len(level) > 1:
        up = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])
        levels.append(up)
        level = up
    return levels


def edge_inclusion(levels: Sequence[Sequence[Any]], index: int) -> list[Any]:
    """Leaf `index`'s inclusion proof (RFC 9162, 2.1.3.1) from `edge_levels` (or the same
    levels as hex strings): the sibling of its node at each level that has one."""
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index >>= 1
    return path


def stored_inclusion(blob: bytes, count: int, index: int) -> tuple[list[bytes], bytes]:
    """Leaf `index`'s inclusion proof in a tree of `count` leaves, and the tree's root,
    from `blob`: the tree's `MerkleTree.levels` concatenated (perfect subtrees only, as
    a store keeps them). Hashes only the right edge, at most one node per level;
    ValueError when the blob is not the levels of a tree of `count` leaves."""
    length, steps = _stored_plan(count, index)
    if len(blob) != length:
        raise ValueError(f"the stored levels do not fit a tree of {count} leaves")
    path: list[bytes] = []
    edge = b""  # the current level's right-edge node (not a perfect subtree)
    for at, left, right in steps:  # offsets in the blob, -1: the right-edge node
        node = blob[left : left + HASH_SIZE] if left >= 0 else edge
        if at == _PATH:
            path.append(node)
        elif at == _EDGE:
            edge = node_hash(node, blob[right : right + HASH_SIZE] if right >= 0 else edge)
        else:  # _CARRY: an unpaired last node goes up alone
            edge = node
    return path, edge if count > 1 else blob[:HASH_SIZE]


_PATH, _EDGE, _CARRY = 0, 1, 2


@lru_cache(maxsize=4096)
def _stored_plan(count: int, index: int) -> tuple[int, tuple[tuple[int, int, int], ...]]:
    """The blob's length, and the steps of `stored_inclusion` for leaf `index` of `count`
    (the same for every tree of that size): which stored nodes are the proof's, which
    right-edge nodes to hash. The last step leaves the root as the right-edge node."""
    starts: list[int] = []  # where each stored level begins in the blob
    at, width = 0, count
    while True:
        starts.append(at)
        at += width * HASH_SIZE
        if width <= 1:
            break
        width //= 2
    if count < 1:
        raise ValueError(f"the stored levels do not fit a tree of {count} leaves")
    if not 0 <= index < count:
        raise ValueError(f"leaf index {index} is outside a tree of size {count}")

    def node(h: int, j: int) -> int:  # node j of level h: its offset, -1 the right edge
        return starts[h] + j * HASH_SIZE if j < count >> h else -1

    steps: list[tuple[int, int, int]] = []
    h, nodes = 0, count  # level, and its nodes counting the right-edge one
    while nodes > 1:
        sibling = (index >> h) ^ 1
        if sibling < nodes:
            steps.append((_PATH, node(h, sibling), 0))
        up = (nodes + 1) // 2
        if up > count >> (h + 1):
            j = 2 * (count >> (h + 1))
            if j + 1 < nodes:
                steps.append((_EDGE, node(h, j), node(h, j + 1)))
            else:
                steps.append((_CARRY, node(h, j), 0))
        h, nodes = h + 1, up
    if count > 1 and (count >> h) >= 1:  # a perfect tree: its root is stored
        steps.append((_CARRY, node(h, 0), 0))
    return at, tuple(steps)


class CompactRange:
    """The perfect subtrees of a growing log, largest first (a *compact range*): appending
    a leaf and the root of the new size cost O(log n) hashes, so a mint never rehashes its
    plant's whole log."""

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self.size = 0
        self._peaks: list[tuple[int, bytes]] = []  # (height, root), heights decreasing
        for h in leaf_hashes:
            self.append(h)

    def copy(self) -> CompactRange:
        """An independent copy (appending to it leaves this one as it is)."""
        other = CompactRange()
        other.size = self.size
        other._peaks = list(self._peaks)
        return other

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf's hash."""
        height, node = 0, leaf_hash
        while self._peaks and self._peaks[-1][0] == height:
            node = node_hash(self._peaks.pop()[1], node)
            height += 1
        self._peaks.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        """The root of the log as it stands (RFC 9162's MTH, folded from the right)."""
        if not self._peaks:
            return EMPTY_ROOT
        root = self._peaks[-1][1]
        for _height, node in reversed(self._peaks[:-1]):
            root = node_hash(node, root)
        return root
