"""Proofs drawn from a tree's levels (the bundle's fast path) equal RFC 9162's recursion
as `MerkleTree` computes it, for every size and leaf."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heliod.rewards.tlog.tree import MerkleTree, edge_inclusion, edge_levels, stored_inclusion


def _hashes(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


@given(st.integers(1, 300), st.data())
def test_proofs_from_levels_are_the_recursions_proofs(n: int, data: st.DataObject) -> None:
    hashes = _hashes(n)
    tree = MerkleTree(hashes)
    blob = b"".join(h for level in tree.levels for h in level)
    levels = edge_levels(hashes)
    assert levels[-1] == [tree.root()]
    index = data.draw(st.integers(0, n - 1))
    assert edge_inclusion(levels, index) == tree.inclusion(index)
    assert stored_inclusion(blob, n, index) == (tree.inclusion(index), tree.root())


def test_every_leaf_of_small_trees() -> None:
    for n in range(1, 40):
        tree = MerkleTree(_hashes(n))
        blob = b"".join(h for level in tree.levels for h in level)
        for i in range(n):
            assert stored_inclusion(blob, n, i) == (tree.inclusion(i), tree.root())


@pytest.mark.parametrize("cut", [-1, 1])
def test_stored_levels_of_another_size_are_refused(cut: int) -> None:
    tree = MerkleTree(_hashes(21))
    blob = b"".join(h for level in tree.levels for h in level)
    with pytest.raises(ValueError, match="do not fit a tree of"):
        stored_inclusion(blob + b"x" * 32 if cut > 0 else blob[:-32], 21, 3)
    with pytest.raises(ValueError, match="outside a tree of size 21"):
        stored_inclusion(blob, 21, 21)
