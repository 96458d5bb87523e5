"""Properties of the ledger's trees, proofs, leaves and signatures, with Hypothesis.

The reference root is RFC 9162 section 2.1.1's recursive definition, written here
literally; the tree under test builds levels and folds perfect subtrees."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import MAX_PREC, Context, Decimal, Inexact, Rounded

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from heliod.rewards.allocation import Allocator
from heliod.rewards.register import InForce
from heliod.rewards.tlog import leaves
from heliod.rewards.tlog.leaves import (
    GROUP_HEIGHT,
    BackerTree,
    credit_leaf_hashes,
    credit_leaves,
    decimal_text,
    leaf_hash_of,
    prove_credit,
    prove_weight,
    register_leaf_hashes,
    register_leaves,
    register_root,
    register_total,
    scaled_text,
    sorted_credits_tree,
    sorted_register_root,
    stored_credits_tree,
    stored_register_tree,
)
from heliod.rewards.tlog.note import checkpoint_text, signed_note
from heliod.rewards.tlog.tree import MerkleTree, group_roots, grouped_inclusion
from heliod.rewards.tlog.verify import (
    EMPTY_ROOT,
    ProofError,
    canonical_decimal,
    canonical_json,
    ed25519_verify,
    leaf_hash,
    node_hash,
    open_note,
    tree_root_of,
    verify_consistency,
    verify_inclusion,
)

# The machine running the tests may be shared: no per-example deadline.
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_root(hashes: Sequence[bytes]) -> bytes:
    """MTH of RFC 9162 2.1.1, recursively (on leaf hashes)."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(reference_root(hashes[:k]), reference_root(hashes[k:]))


def flip(data: bytes, bit: int) -> bytes:
    """`data` with one bit changed."""
    i = bit % (8 * len(data))
    return data[: i // 8] + bytes([data[i // 8] ^ (1 << (i % 8))]) + data[i // 8 + 1 :]


@st.composite
def trees(draw: st.DrawFn, max_size: int = 70) -> tuple[MerkleTree, list[bytes]]:
    n = draw(st.integers(1, max_size))
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    return MerkleTree(hashes), hashes


@PROPERTY
@given(trees(), st.data())
def test_root_of_every_size_is_rfc9162s(
    case: tuple[MerkleTree, list[bytes]], data: st.DataObject
) -> None:
    tree, hashes = case
    size = data.draw(st.integers(0, len(hashes)))
    assert tree.root(size) == reference_root(hashes[:size]) == tree_root_of(hashes[:size])


@PROPERTY
@given(trees(), st.data())
def test_every_inclusion_proof_verifies_and_any_change_fails(
    case: tuple[MerkleTree, list[bytes]], data: st.DataObject
) -> None:
    tree, hashes = case
    size = data.draw(st.integers(1, len(hashes)))
    index = data.draw(st.integers(0, size - 1))
    root = tree.root(size)
    proof = tree.inclusion(index, size)
    verify_inclusion(index, size, hashes[index], proof, root)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(ProofError):
        verify_inclusion(index, size, flip(hashes[index], bit), proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, hashes[index], proof, flip(root, bit))
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        changed = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]
        with pytest.raises(ProofError):
            verify_inclusion(index, size, hashes[index], changed, root)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, hashes[index], proof[:-1], root)
    with pytest.raises(ProofError):  # an unused extra element
        verify_inclusion(index, size, hashes[index], [*proof, hashes[0]], root)
    other = data.draw(st.integers(0, size))
    assume(other != index)
    with pytest.raises(ProofError):
        verify_inclusion(other, size, hashes[index], proof, root)


@PROPERTY
@given(trees(), st.data())
def test_every_consistency_proof_verifies_and_any_change_fails(
    case: tuple[MerkleTree, list[bytes]], data: st.DataObject
) -> None:
    tree, hashes = case
    size2 = data.draw(st.integers(1, len(hashes)))
    size1 = data.draw(st.integers(1, size2))
    root1, root2 = tree.root(size1), tree.root(size2)
    proof = tree.consistency(size1, size2)
    verify_consistency(size1, size2, root1, root2, proof)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, flip(root1, bit), root2, proof)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, root1, flip(root2, bit), proof)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        changed = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, changed)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, proof[:-1])
    with pytest.raises(ProofError):  # an unused extra element
        verify_consistency(size1, size2, root1, root2, [*proof, hashes[0]])
    if size1 < size2:  # first > second is refused, whatever the proof
        with pytest.raises(ProofError):
            verify_consistency(size2, size1, root2, root1, proof)
    with pytest.raises(ProofError):
        verify_consistency(0, size2, EMPTY_ROOT, root2, proof)


@PROPERTY
@given(trees(max_size=20), st.data())
def test_a_rewritten_leaf_breaks_consistency(
    case: tuple[MerkleTree, list[bytes]], data: st.DataObject
) -> None:
    tree, hashes = case
    size2 = data.draw(st.integers(2, max(2, len(hashes))))
    assume(size2 <= len(hashes))
    size1 = data.draw(st.integers(1, size2 - 1))
    changed = list(hashes)
    at = data.draw(st.integers(0, size1 - 1))
    changed[at] = flip(changed[at], 0)
    rewritten = MerkleTree(changed)
    with pytest.raises(ProofError):
        verify_consistency(
            size1,
            size2,
            tree.root(size1),
            rewritten.root(size2),
            rewritten.consistency(size1, size2),
        )


KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
PUBLIC = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@settings(max_examples=30, deadline=None)  # pure-Python Ed25519: a few ms per check
@given(st.integers(0, 2**40), st.binary(min_size=32, max_size=32), st.integers(0, 8 * 64 - 1))
def test_signed_checkpoints_verify_and_any_signature_bit_flip_fails(
    size: int, root: bytes, bit: int
) -> None:
    text = checkpoint_text("heliod/p1", size, root)
    note = signed_note(text, "heliod/p1", PUBLIC, KEY.sign)
    assert open_note(note, "heliod/p1", PUBLIC) == text
    signature = KEY.sign(text.encode())
    assert ed25519_verify(PUBLIC, text.encode(), signature)
    assert not ed25519_verify(PUBLIC, text.encode(), flip(signature, bit))
    assert not ed25519_verify(PUBLIC, flip(text.encode(), bit), signature)


backer_ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
weights = st.decimals(
    min_value=0, max_value=Decimal(10) ** 15, places=9, allow_nan=False, allow_infinity=False
)


@PROPERTY
@given(st.dictionaries(backer_ids, weights, max_size=20))
def test_fast_register_hashes_are_canonical_jsons(register: dict[str, Decimal]) -> None:
    backers, hashes = register_leaf_hashes(register)
    leaves = register_leaves(register)
    assert [leaf_hash(canonical_json(x)) for x in leaves] == hashes
    assert [leaf_hash_of({"backer": b, "weight": register[b]}) for b in backers] == hashes
    assert [x["backer"].encode() for x in leaves] == sorted(
        b.encode() for b, w in register.items() if w > 0
    )
    assert Decimal(register_total(register)) == sum(
        (w for w in register.values() if w > 0), Decimal(0)
    )


@PROPERTY
@given(st.dictionaries(backer_ids, st.integers(0, 10**30), max_size=20))
def test_fast_credit_hashes_are_canonical_jsons(credits: dict[str, int]) -> None:
    backers, hashes = credit_leaf_hashes(credits)
    leaves = credit_leaves(credits)
    assert [leaf_hash(canonical_json(x)) for x in leaves] == hashes
    assert backers == [x["backer"] for x in leaves]
    assert [x["backer"].encode() for x in leaves] == sorted(
        b.encode() for b, c in credits.items() if c > 0
    )


@PROPERTY
@given(
    st.dictionaries(backer_ids, weights, max_size=20),
    st.sampled_from([1, 7, 10**8, 12345 * 10**18]),
)
def test_a_mints_tree_hashes_need_no_sort(register: dict[str, Decimal], units: int) -> None:
    """The leaf hashes of a mint's credits taken in the allocator's order are those of
    the credits sorted as a mapping, the register root of the weights in force in their
    order that of the mapping; input out of order or not positive is refused."""
    alloc = Allocator(units)
    alloc.use(InForce.of((0, 0), register))
    credits = alloc.mint()
    in_force = InForce.of((0, 0), register)
    columns = (in_force.backers, in_force.weights, in_force.common, in_force.places)
    assert sorted_register_root(*columns) == register_root(register)
    backers, ints = in_force.backers, in_force.weights
    if len(backers) > 1:
        with pytest.raises(ValueError):
            sorted_register_root(backers[::-1], ints[::-1], *columns[2:])
    if backers:
        with pytest.raises(ValueError):
            sorted_register_root(backers, [0, *ints[1:]], *columns[2:])
        with pytest.raises(ValueError):
            sorted_register_root(backers, ints[1:], *columns[2:])
    names, amounts = list(credits.names()), list(credits.units)
    for height in (0, 1, GROUP_HEIGHT):
        assert sorted_credits_tree(names, amounts, height) == stored_credits_tree(
            dict(credits.pairs()), height
        )
    if len(names) > 1:
        with pytest.raises(ValueError):
            sorted_credits_tree(names[::-1], amounts[::-1])
        with pytest.raises(ValueError):
            sorted_credits_tree([names[0], *names], [amounts[0], *amounts])
    if names:
        with pytest.raises(ValueError):
            sorted_credits_tree(names, [0, *amounts[1:]])


@pytest.mark.parametrize("slice_size", [1, 16, 32, 1 << 16])
def test_trees_hashed_slice_by_slice_are_the_whole(
    monkeypatch: pytest.MonkeyPatch, slice_size: int
) -> None:
    names = [f"b{i:03d}" for i in range(229)]
    amounts = [1 + i % 7 for i in range(229)]
    monkeypatch.setattr(leaves, "_SLICE", slice_size)
    for height in (0, 2, GROUP_HEIGHT, 6):
        whole = stored_credits_tree(dict(zip(names, amounts, strict=True)), height)
        assert sorted_credits_tree(names, amounts, height) == whole
        assert sorted_credits_tree(names[:-13], amounts[:-13], height).count == 216
    register = {b: Decimal(w) / 3 for b, w in zip(names, amounts, strict=True)}
    in_force = InForce.of((0, 0), register)
    scale = (in_force.common, in_force.places)
    assert sorted_register_root(in_force.backers, in_force.weights, *scale) == register_root(
        register
    )
    if slice_size < len(names):
        backers, ints = in_force.backers, in_force.weights
        with pytest.raises(ValueError):  # out of order across two slices
            sorted_register_root(
                [*backers[slice_size:], *backers[:slice_size]],
                [*ints[slice_size:], *ints[:slice_size]],
                *scale,
            )


@PROPERTY
@given(st.integers(min_value=0, max_value=10**40), st.integers(min_value=0, max_value=40))
def test_scaled_texts_are_the_decimals_texts(n: int, places: int) -> None:
    """A weight kept as an integer and a scale is written as its Decimal would be."""
    exact = Context(prec=MAX_PREC, traps=[Inexact, Rounded])
    assert scaled_text(n, places) == decimal_text(Decimal(n).scaleb(-places, exact))


@PROPERTY
@given(weights)
def test_canonical_decimals_are_shortest_and_exact(value: Decimal) -> None:
    text = canonical_decimal(value)
    assert Decimal(text) == value
    assert "e" not in text.lower()
    assert not text.endswith(".")
    assert "." not in text or not text.endswith("0")
    assert canonical_decimal(Decimal(text)) == text
    assert canonical_decimal(value.normalize()) == text  # 1E+3 and 1000.00 alike


def test_canonical_json_by_hand() -> None:
    assert canonical_json(
        {"b": Decimal("100"), "a": [Decimal("0.50"), Decimal("-0")], "é": "ü"}
    ) == ('{"a":["0.5","0"],"b":"100","é":"ü"}'.encode())
    assert canonical_json({"weight": Decimal("1E+3")}) == b'{"weight":"1000"}'
    assert json.loads(canonical_json({"x": 10**30}))["x"] == 10**30
    with pytest.raises(TypeError):
        canonical_json({"x": 0.5})


@PROPERTY
@given(trees(max_size=200), st.integers(0, 5), st.data())
def test_proofs_from_group_roots_are_the_whole_trees(
    case: tuple[MerkleTree, list[bytes]], height: int, data: st.DataObject
) -> None:
    tree, hashes = case
    roots = group_roots(hashes, height)
    width = 1 << height
    assert roots == [tree_root_of(hashes[i : i + width]) for i in range(0, len(hashes), width)]
    assert MerkleTree(roots).root() == tree.root()
    index = data.draw(st.integers(0, len(hashes) - 1))
    width = 1 << height
    start = index // width * width
    group = hashes[start : start + width]
    assert grouped_inclusion(index, len(hashes), group, roots, height) == tree.inclusion(index)
    with pytest.raises(ValueError):
        grouped_inclusion(index, len(hashes), [flip(group[0], 0), *group[1:]], roots, height)
    upper = MerkleTree(roots)
    stored = MerkleTree.from_levels(upper.levels)
    assert grouped_inclusion(index, len(hashes), group, stored, height) == tree.inclusion(index)
    with pytest.raises(ValueError):
        MerkleTree.from_levels(upper.levels[:-1] if len(upper.levels) > 1 else [[], [b""]])


@PROPERTY
@given(
    st.dictionaries(backer_ids, st.integers(0, 10**12), max_size=60),
    st.dictionaries(backer_ids, weights, max_size=60),
    st.integers(0, 4),
    st.data(),
)
def test_stored_trees_prove_as_the_whole_trees(
    credits: dict[str, int], register: dict[str, Decimal], height: int, data: st.DataObject
) -> None:
    width = 1 << height
    for whole, stored, prove, values in (
        (BackerTree.credits(credits), stored_credits_tree(credits, height), prove_credit, credits),
        (
            BackerTree.register(register),
            stored_register_tree(register, height),
            prove_weight,
            register,
        ),
    ):
        assert (stored.root, stored.count) == (whole.root, whole.count)
        if not whole.count:
            continue
        index = data.draw(st.integers(0, whole.count - 1))
        g = index // width
        group = {b: values[b] for b in whole.backers[g * width : (g + 1) * width]}
        placed = whole.place(whole.backers[index])
        assert placed is not None
        assert prove(index, group, stored) == placed.inclusion  # type: ignore[operator]
