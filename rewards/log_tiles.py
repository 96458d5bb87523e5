"""What the gateway keeps of its Merkle trees to prove quickly (docs/storage.md, "The log").

- A *compact range*: the roots of the perfect subtrees a log of n leaves decomposes into
  (one per bit of n). Appending a leaf and the root of the new size cost O(log n)
  hashes, so a mint never rehashes its plant's whole log.
- *Tiles* of a mint's credits tree, in the manner of the C2SP tlog-tiles layout: the
  root of each run of 2^TILE_HEIGHT leaves (the last run may be shorter). In RFC 9162's
  tree each run is a subtree, and the tree over the runs' roots is the tree itself, so
  a leaf's inclusion proof is its proof inside its run (from that run's leaves alone)
  followed by its run's proof in the tree of runs (from the stored roots alone).
"""

from __future__ import annotations

from collections.abc import Sequence

from heliod.rewards.tlog.leaves import GROUP_HEIGHT
from heliod.rewards.tlog.tree import MerkleTree, group_roots
from heliod.rewards.tlog.verify import EMPTY_ROOT, HASH_SIZE, node_hash

# 16 leaves per run (rewards/tlog's groups): a mint's stored tiles are about 2 × 32 / 16 =
# 4 bytes per credit (2 hashes of 32 bytes per run of 16, counting the upper levels rebuilt
# from them), and a proof reads 16 credit rows of each mint. docs/performance.md has the
# measurements. A leaf's proof is rewards/tlog/tree.py `grouped_inclusion`.
TILE_HEIGHT = GROUP_HEIGHT
TILE_WIDTH = 1 << TILE_HEIGHT


class CompactRange:
    """The perfect subtrees of a growing log, largest first: append and root in O(log n)."""

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


def tiles(leaf_hashes: Sequence[bytes]) -> tuple[bytes, bytes]:
    """(root of the tree, its tiles): every level of the tree over the run roots, from the
    run roots up (the perfect subtrees of each level), concatenated. About 2 × 32 bytes per
    run of TILE_WIDTH leaves; a proof then hashes only its own run."""
    tree = MerkleTree(group_roots(leaf_hashes, TILE_HEIGHT))
    return tree.root(), b"".join(h for level in tree.levels for h in level)


def runs_tree(blob: bytes, count: int) -> MerkleTree:
    """The tree over the run roots of a tree of `count` leaves, from its stored tiles;
    ValueError when the blob is not that tree's levels."""
    runs = -(-count // TILE_WIDTH)
    levels: list[list[bytes]] = []
    at, width = 0, runs
    while True:
        size = width * HASH_SIZE
        level = blob[at : at + size]
        if len(level) != size:
            raise ValueError(f"the stored tiles are too short for a tree of {count} leaves")
        levels.append([level[i : i + HASH_SIZE] for i in range(0, size, HASH_SIZE)])
        at += size
        if width <= 1:
            break
        width //= 2
    if at != len(blob):
        raise ValueError(f"the stored tiles are too long for a tree of {count} leaves")
    return MerkleTree.from_levels(levels)


def run_of(index: int, count: int) -> tuple[int, int]:
    """The positions [start, stop) of the run holding leaf `index` in a tree of `count`."""
    start = index - index % TILE_WIDTH
    return start, min(start + TILE_WIDTH, count)
