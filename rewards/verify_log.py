"""`ledger verify` for the verifiable log (docs/verification.md, "What the auditor checks").

Every leaf is recomputed from the stored mint, its stored credits and the register rows
the mint saw (rewards/verify.py `WeightsInForce`, not the live `Register`), with the
offline verifier's hashing and signature code (rewards/tlog/verify.py, not the live
tree and leaf builders). The tree is rebuilt from those leaves, and every stored
checkpoint must be signed by one of the plant's verifier keys and carry the root of the
rebuilt tree of its size. The first problem names the first mint concerned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import MAX_PREC, Context, Decimal, Inexact, Rounded

from heliod.rewards.tlog.verify import (
    EMPTY_ROOT,
    canonical_decimal,
    canonical_json,
    leaf_hash,
    node_hash,
    open_note,
    parse_checkpoint,
    parse_vkey,
    tree_root_of,
)
from heliod.rewards.verify import MintRecord, Row, WeightsInForce

_EXACT = Context(prec=MAX_PREC, traps=[Inexact, Rounded])


@dataclass(frozen=True, slots=True)
class StoredLeaf:
    """A leaf as the log stores it."""

    index: int
    leaf: str
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint as the log stores it."""

    size: int
    root: bytes
    note: str


def _tree_root(hashes: Sequence[bytes]) -> bytes:
    return tree_root_of(hashes) if hashes else EMPTY_ROOT


def expected_leaf(
    m: MintRecord, weights: Mapping[str, Decimal], credits: Mapping[str, int]
) -> dict[str, object]:
    """The leaf docs/verification.md defines for a mint, from its stored facts."""
    register = sorted((b, w) for b, w in weights.items() if w > 0)
    register_hashes = [
        leaf_hash(canonical_json({"backer": b, "weight": canonical_decimal(w)}))
        for b, w in register
    ]
    total = Decimal(0)
    for _b, w in register:
        total = _EXACT.add(total, w)
    paid = sorted((b, u) for b, u in credits.items() if u > 0)
    credit_hashes = [leaf_hash(canonical_json({"backer": b, "units": u})) for b, u in paid]
    return {
        "v": 1,
        "plant": m.plant,
        "mwh_index": m.mwh_index,
        "completed_at_us": m.completed_at_us,
        "units": m.units,
        "undistributed_units": m.undistributed_after,
        "register_root": _tree_root(register_hashes).hex(),
        "register_count": len(register_hashes),
        "register_total": canonical_decimal(total),
        "credits_root": _tree_root(credit_hashes).hex(),
        "credits_count": len(credit_hashes),
    }


class _Roots:
    """Roots of every prefix of a list of leaf hashes, in O(n log n) hashes overall."""

    def __init__(self) -> None:
        self._peaks: list[tuple[int, bytes]] = []

    def add(self, h: bytes) -> bytes:
        height, node = 0, h
        while self._peaks and self._peaks[-1][0] == height:
            node = node_hash(self._peaks.pop()[1], node)
            height += 1
        self._peaks.append((height, node))
        root = self._peaks[-1][1]
        for _height, peak in reversed(self._peaks[:-1]):
            root = node_hash(peak, root)
        return root


def verify_log(
    plant: str,
    *,
    vkeys: Sequence[str],
    mints: Sequence[MintRecord],
    credits: Mapping[int, Mapping[str, int]],
    rows: Sequence[Row],
    leaves: Sequence[StoredLeaf],
    checkpoints: Sequence[StoredCheckpoint],
) -> list[str]:
    """Every problem of the plant's log against its stored ledger (empty: none)."""
    problems: list[str] = []
    weights = WeightsInForce(rows)
    stored = {leaf.index: leaf for leaf in leaves}
    ordered = sorted(mints, key=lambda m: m.mwh_index)
    roots: dict[int, bytes] = {0: EMPTY_ROOT}
    prefix = _Roots()
    for position, m in enumerate(ordered):
        index = m.mwh_index - 1
        in_force = weights.decimals_at(m.completed_at_us, m.register_pos)
        want = expected_leaf(m, in_force, credits.get(m.mwh_index, {}))
        data = canonical_json(want)
        roots[position + 1] = prefix.add(leaf_hash(data))
        leaf = stored.get(index)
        if index != position:
            continue  # mint numbers with a gap: reported by the ledger's own checks
        if leaf is None:
            problems.append(
                f"{plant}: mint {m.mwh_index} has no leaf in the log (start heliod, or run "
                "`heliod account`, to build the log of mints from before it)"
            )
            continue
        if leaf.leaf.encode("utf-8") != data:
            problems.append(f"{plant}: mint {m.mwh_index}: its log leaf {_diff(leaf.leaf, want)}")
        elif leaf.leaf_hash != leaf_hash(data):
            problems.append(f"{plant}: mint {m.mwh_index}: its stored leaf hash is not its leaf's")
    extra = sorted(set(stored) - {m.mwh_index - 1 for m in ordered})
    if extra:
        problems.append(
            f"{plant}: the log has leaves for mints that are not stored: "
            f"{[i + 1 for i in extra[:10]]} (mint numbers)"
        )
    keys = []
    for text in vkeys:
        try:
            keys.append(parse_vkey(text))
        except ValueError as e:
            problems.append(f"{plant}: verifier key {text!r} is malformed: {e}")
    for cp in checkpoints:
        problems += _check_checkpoint(plant, keys, cp, roots)
    return problems


def _check_checkpoint(
    plant: str,
    keys: Sequence[tuple[str, bytes]],
    cp: StoredCheckpoint,
    roots: Mapping[int, bytes],
) -> list[str]:
    # A checkpoint names its log by its origin, which is also the name of the key that
    # signs it: after `[log] origin_prefix` changed, older checkpoints keep the old name.
    text, name = None, ""
    for name, public_key in keys:
        try:
            text = open_note(cp.note, name, public_key)
            break
        except (ValueError, LookupError):  # malformed, bad signature, or not by this key
            continue
    where = f"{plant}: the checkpoint of size {cp.size}"
    if text is None:
        return [f"{where} is not signed by any of the plant's verifier keys"]
    try:
        found_origin, size, root = parse_checkpoint(text)
    except ValueError as e:
        return [f"{where} is malformed: {e}"]
    if found_origin != name or size != cp.size or root != cp.root:
        return [f"{where} says origin {found_origin!r}, size {size}: not what is stored with it"]
    want = roots.get(cp.size)
    if want is None:
        stored = len(roots) - 1
        return [f"{where} is larger than the {stored} stored mints (mint {stored + 1} deleted?)"]
    if want != root:
        return [
            f"{where} has a root that the stored mints do not give: the ledger up to mint "
            f"{cp.size} was changed after it was signed"
        ]
    return []


def _diff(stored: str, want: Mapping[str, object]) -> str:
    try:
        have = json.loads(stored)
    except ValueError:
        return "is not JSON"
    if not isinstance(have, dict):
        return "is not a JSON object"
    for key in sorted(set(have) | set(want)):
        if have.get(key) != want.get(key):
            return (
                f"says {key} = {have.get(key)!r}, the stored mint, credits and register give "
                f"{want.get(key)!r}"
            )
    return "is not in canonical form"
