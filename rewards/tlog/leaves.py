"""The leaves of the verifiable ledger (docs/verification.md, "Leaves"): a mint's leaf in
its plant's log, and the register and credits trees each mint commits to.

A register or credits tree has one leaf per backer, sorted by backer id as UTF-8 bytes.
Python orders strings by code point, and UTF-8 keeps code point order, so `sorted()` on
the ids gives that order without encoding them. The leaf hashes of these trees are
computed from a byte template rather than a dict per backer through `canonical_json`;
the tests check with Hypothesis that both give the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import MAX_PREC, Context, Decimal, Inexact, InvalidOperation, Rounded
from itertools import islice, repeat
from json.encoder import encode_basestring  # JSON string as json.dumps(ensure_ascii=False)
from operator import ge
from typing import Any

from heliod.rewards.tlog.tree import MerkleTree, group_roots, grouped_inclusion
from heliod.rewards.tlog.verify import (
    LEAF_VERSION,
    canonical_decimal,
    canonical_json,
    leaf_hash,
    tree_root_of,
)

_EXACT = Context(prec=MAX_PREC, traps=[Inexact, Rounded])  # a sum of weights, never rounded


def decimal_text(value: Decimal | int) -> str:
    """A weight or total as the leaves write it: the shortest exact decimal string."""
    return str(value) if isinstance(value, int) else canonical_decimal(value)


def _positive(weights: Mapping[str, Decimal | int]) -> list[tuple[str, Decimal | int]]:
    return sorted((b, w) for b, w in weights.items() if w > 0)


def register_leaves(weights: Mapping[str, Decimal | int]) -> list[dict[str, Any]]:
    """`{"backer", "weight"}` per backer with a positive weight, sorted by backer id."""
    return [{"backer": b, "weight": decimal_text(w)} for b, w in _positive(weights)]


def credit_leaves(credits: Mapping[str, int]) -> list[dict[str, Any]]:
    """`{"backer", "units"}` per credit of more than 0 units, sorted by backer id."""
    return [{"backer": b, "units": c} for b, c in sorted(credits.items()) if c > 0]


def register_total(weights: Mapping[str, Decimal | int]) -> str:
    """W: the exact sum of the positive weights, as a decimal string."""
    total = _EXACT.create_decimal(0)
    for w in weights.values():
        if w > 0:
            total = _EXACT.add(total, w)
    return canonical_decimal(total)


def leaf_bytes(leaf: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of any leaf."""
    return canonical_json(leaf)


def leaf_hash_of(leaf: Mapping[str, Any]) -> bytes:
    """The leaf hash of any leaf: SHA-256(0x00 || canonical JSON)."""
    return leaf_hash(canonical_json(leaf))


def _register_hash(backer: str, weight: str) -> bytes:
    data = '\x00{"backer":' + encode_basestring(backer) + ',"weight":"' + weight + '"}'
    return hashlib.sha256(data.encode()).digest()


def _credit_hash(backer: str, units: int) -> bytes:
    data = '\x00{"backer":' + encode_basestring(backer) + ',"units":' + str(units) + "}"
    return hashlib.sha256(data.encode()).digest()


def scaled_text(n: int, places: int) -> str:
    """n × 10^-places (n ≥ 0) as `decimal_text` writes that decimal, without making it."""
    if not places:
        return str(n)
    digits = str(n).rjust(places + 1, "0")
    whole, fraction = digits[:-places], digits[-places:].rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def register_leaf_hashes(weights: Mapping[str, Decimal | int]) -> tuple[list[str], list[bytes]]:
    """The register tree's backers and leaf hashes, in leaf order."""
    items = [(b, decimal_text(w)) for b, w in _positive(weights)]
    return [b for b, _ in items], [_register_hash(b, w) for b, w in items]


def credit_leaf_hashes(credits: Mapping[str, int]) -> tuple[list[str], list[bytes]]:
    """The credits tree's backers and leaf hashes, in leaf order."""
    items = sorted((b, c) for b, c in credits.items() if c > 0)
    return [b for b, _ in items], [_credit_hash(b, c) for b, c in items]


@dataclass(frozen=True)
class TreeRoot:
    """What a mint's leaf says of one of its trees."""

    root: bytes
    count: int


def register_root(weights: Mapping[str, Decimal | int]) -> tuple[TreeRoot, str]:
    """The register tree's root and size, and W (the mint leaf's register fields)."""
    _, hashes = register_leaf_hashes(weights)
    return TreeRoot(tree_root_of(hashes), len(hashes)), register_total(weights)


def sorted_register_root(
    backers: Sequence[str], weights: Sequence[int], common: int = 1, places: int = 0
) -> tuple[TreeRoot, str]:
    """`register_root` of weights in force given as a register keeps them (`InForce`'s
    columns): backer i's weight is weights[i] × common / 10^places, the backers sorted,
    each once, the weights > 0; without a lookup, a sort or a Decimal per backer, a slice
    of leaves at a time (each slice's root, a perfect subtree, then the tree over them).
    ValueError if they are not."""
    if len(backers) != len(weights) or common < 1 or places < 0:
        raise ValueError("weights not in step with their backers, or not scaled")
    if any(map(ge, backers, islice(backers, 1, None))) or min(weights, default=1) <= 0:
        raise ValueError("weights not sorted by backer, each once, all > 0")
    height = _SLICE.bit_length() - 1  # _SLICE is a power of two
    roots: list[bytes] = []
    text_of: dict[int, str] = {}  # a register's weights repeat (the same amounts invested)
    for a in range(0, len(backers), _SLICE):
        amounts = weights[a : a + _SLICE]
        if len(text_of) > _SLICE:  # weights mostly distinct: the memo would only grow
            text_of.clear()
        new = list(set(amounts).difference(text_of))
        scaled = map(scaled_text, map(common.__mul__, new), repeat(places))
        text_of.update(zip(new, scaled, strict=True))
        texts = map(text_of.__getitem__, amounts)
        roots += group_roots(list(map(_register_hash, backers[a : a + _SLICE], texts)), height)
    total = scaled_text(sum(weights) * common, places)
    return TreeRoot(MerkleTree(roots).root(), len(backers)), total


def credits_root(credits: Mapping[str, int]) -> TreeRoot:
    """The credits tree's root and size (the mint leaf's credits fields)."""
    _, hashes = credit_leaf_hashes(credits)
    return TreeRoot(tree_root_of(hashes), len(hashes))


@dataclass(frozen=True)
class Placed:
    """A backer's leaf in a register or credits tree: its value ("weight" text or
    "units"), its index and its inclusion proof, as the proof bundle carries them."""

    value: str | int
    index: int
    inclusion: list[bytes]


class BackerTree:
    """A register or credits tree held whole, to place any of its backers."""

    def __init__(self, backers: list[str], values: list[str] | list[int], hashes: list[bytes]):
        self.backers = backers
        self.values = values
        self.tree = MerkleTree(hashes)
        self._index = {b: i for i, b in enumerate(backers)}

    @classmethod
    def register(cls, weights: Mapping[str, Decimal | int]) -> BackerTree:
        """The register tree of these weights in force."""
        items = [(b, decimal_text(w)) for b, w in _positive(weights)]
        return cls(
            [b for b, _ in items], [w for _, w in items], [_register_hash(b, w) for b, w in items]
        )

    @classmethod
    def credits(cls, credits: Mapping[str, int]) -> BackerTree:
        """The credits tree of one mint's credits."""
        items = sorted((b, c) for b, c in credits.items() if c > 0)
        return cls(
            [b for b, _ in items], [c for _, c in items], [_credit_hash(b, c) for b, c in items]
        )

    @property
    def root(self) -> bytes:
        """The tree's root."""
        return self.tree.root()

    @property
    def count(self) -> int:
        """The number of leaves."""
        return self.tree.size

    def place(self, backer: str) -> Placed | None:
        """The backer's leaf and proof, None when the backer has no leaf here."""
        index = self._index.get(backer)
        if index is None:
            return None
        return Placed(self.values[index], index, self.tree.inclusion(index))


def mint_leaf(  # noqa: PLR0917 - the leaf's fields in the order docs/verification.md lists them
    plant: str,
    mwh_index: int,
    completed_at_us: int,
    units: int,
    undistributed_units: int,
    register_root: bytes,
    register_count: int,
    register_total: Decimal | int | str,
    credits_root: bytes,
    credits_count: int,
) -> dict[str, Any]:
    """The leaf of mint `mwh_index` in its plant's log (leaf index = mwh_index - 1)."""
    total = register_total if isinstance(register_total, str) else decimal_text(register_total)
    try:
        shortest = decimal_text(Decimal(total))
    except (InvalidOperation, ValueError):
        shortest = None
    if total != shortest:
        raise ValueError(f"register total {total!r} is not a decimal in its shortest form")
    return {
        "v": LEAF_VERSION,
        "plant": plant,
        "mwh_index": mwh_index,
        "completed_at_us": completed_at_us,
        "units": units,
        "undistributed_units": undistributed_units,
        "register_root": register_root.hex(),
        "register_count": register_count,
        "register_total": total,
        "credits_root": credits_root.hex(),
        "credits_count": credits_count,
    }


def mint_leaf_hashes(leaves: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """The log's leaf hashes of these mint leaves, in order."""
    return [leaf_hash(canonical_json(leaf)) for leaf in leaves]


GROUP_HEIGHT = 4  # a stored tree keeps the levels above groups of 2^4 = 16 leaves


@dataclass(frozen=True)
class StoredTree:
    """What a store keeps of a mint's register or credits tree to prove any of its
    leaves later without the others: the levels of the tree over the roots of groups of
    2^height leaves (docs/verification.md); the leaves themselves are its rows."""

    root: bytes
    count: int
    height: int
    upper: list[list[bytes]]  # upper[0]: the group roots; upper[-1]: [root] (or [] if empty)

    def blob(self) -> bytes:
        """The levels concatenated, as the log's rows store them (docs/storage.md)."""
        return b"".join(h for level in self.upper for h in level)


def stored_tree(hashes: list[bytes], height: int = GROUP_HEIGHT) -> StoredTree:
    """The tree of these leaf hashes as a store keeps it."""
    upper = MerkleTree(group_roots(hashes, height))
    return StoredTree(upper.root(), len(hashes), height, upper.levels)


def sorted_credits_tree(
    backers: Sequence[str], units: Sequence[int], height: int = GROUP_HEIGHT
) -> StoredTree:
    """`stored_credits_tree` of credits given already in leaf order (backers sorted, each
    once, in step with their units, all > 0: what an allocator's mint returns), without a
    lookup or a sort per backer, and without every leaf hash at once: they are made and
    folded into their groups' roots a slice at a time. ValueError if they are not."""
    if len(backers) != len(units):
        raise ValueError("backers and units differ in length")
    if any(map(ge, backers, islice(backers, 1, None))) or min(units, default=1) <= 0:
        raise ValueError("credits not sorted by backer, each once, with units > 0")
    step = max(1 << height, _SLICE)  # a multiple of the group width: no group in two slices
    roots: list[bytes] = []
    for a in range(0, len(backers), step):
        hashes = list(map(_credit_hash, backers[a : a + step], units[a : a + step]))
        roots += group_roots(hashes, height)
    upper = MerkleTree(roots)
    return StoredTree(upper.root(), len(backers), height, upper.levels)


_SLICE = 1 << 16  # leaves hashed per slice (a power of two) by the two `sorted_` builders above


def stored_credits_tree(credits: Mapping[str, int], height: int = GROUP_HEIGHT) -> StoredTree:
    """One mint's credits tree as a store keeps it."""
    return stored_tree(credit_leaf_hashes(credits)[1], height)


def stored_register_tree(
    weights: Mapping[str, Decimal | int], height: int = GROUP_HEIGHT
) -> StoredTree:
    """A register tree as a store keeps it (once per register, shared by its mints)."""
    return stored_tree(register_leaf_hashes(weights)[1], height)


def _prove(index: int, group_hashes: list[bytes], tree: StoredTree) -> list[bytes]:
    upper = MerkleTree.from_levels(tree.upper)
    return grouped_inclusion(index, tree.count, group_hashes, upper, tree.height)


def prove_credit(index: int, group: Mapping[str, int], tree: StoredTree) -> list[bytes]:
    """The inclusion proof of credit leaf `index`, from the credits of its group (the
    leaves [g·2^height, (g+1)·2^height) of the tree, g = index // 2^height)."""
    return _prove(index, credit_leaf_hashes(group)[1], tree)


def prove_weight(index: int, group: Mapping[str, Decimal | int], tree: StoredTree) -> list[bytes]:
    """The inclusion proof of register leaf `index`, from the weights of its group."""
    return _prove(index, register_leaf_hashes(group)[1], tree)
