"""Merkle trees of the verifiable ledger: roots and proofs as RFC 9162 section 2.1 defines
them (docs/verification.md). Hashing comes from the offline verifier, so that the bytes
the gateway proves and the bytes a backer checks are computed by the same lines."""

from __future__ import annotations

from collections.abc import Sequence

from heliod.rewards.tlog.verify import EMPTY_ROOT, node_hash


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
    return [tree_root(leaf_hashes[i : i + width]) for i in range(0, len(leaf_hashes), width)]


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
