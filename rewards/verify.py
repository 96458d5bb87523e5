"""The ledger's invariants (docs/accounting.md), checked from what is stored, exactly.

The live accountant credits with integer remainders (`allocation.Allocator`); this module
recomputes every entitlement with `fractions.Fraction` and compares, so a bug in the fast
path cannot also hide in its check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import floor

from heliod.rewards.allocation import Allocator
from heliod.rewards.register import Register


@dataclass(frozen=True, slots=True)
class MintRecord:
    """A stored mint as `ledger verify` reads it."""

    plant: str
    mwh_index: int
    completed_at_us: int
    units: int
    register_pos: int
    undistributed_after: int


def verify_plant(
    plant: str,
    *,
    units_per_mwh: int,
    mints: Sequence[MintRecord],
    credits: Mapping[int, Mapping[str, int]],
    register: Register,
    balances: Mapping[str, int] | None = None,
) -> list[str]:
    """Every failed invariant for one plant, as readable lines (empty: all hold)."""
    problems: list[str] = []
    ordered = sorted(mints, key=lambda m: m.mwh_index)
    indexes = [m.mwh_index for m in ordered]
    if indexes != list(range(1, len(ordered) + 1)):
        problems.append(f"{plant}: mint numbers are not exactly 1..{len(ordered)}: {indexes[:10]}")
    extra = sorted(set(credits) - set(indexes))
    if extra:
        problems.append(f"{plant}: credits for mints that do not exist: {extra[:10]}")

    fast = Allocator(units_per_mwh)
    exact: dict[str, Fraction] = {}
    credited: dict[str, int] = {}
    minted = 0
    no_share_units = 0
    holders: set[str] = set()  # backers with a share in force at some mint
    for n, m in enumerate(ordered):
        if m.units != units_per_mwh:
            problems.append(
                f"{plant}: mint {m.mwh_index} has {m.units} units, expected {units_per_mwh}"
            )
        minted += m.units
        key, weights = register.weights_at(m.completed_at_us, m.register_pos)
        holders.update(weights)
        total = sum((Fraction(w) for w in weights.values()), Fraction(0))
        if total == 0:
            no_share_units += m.units
        else:
            for backer, w in weights.items():
                share = Fraction(w) / total
                exact[backer] = exact.get(backer, Fraction(0)) + m.units * share
        fast.use(key, weights)
        expected = fast.mint()
        stored = dict(credits.get(m.mwh_index, {}))
        for backer, units in stored.items():
            if units <= 0:
                problems.append(
                    f"{plant}: mint {m.mwh_index} credits {backer} {units} units (not > 0)"
                )
            credited[backer] = credited.get(backer, 0) + units
        if stored != expected:
            problems.append(
                f"{plant}: mint {m.mwh_index} credits differ from a replay: "
                f"stored {_diff(stored, expected)}"
            )
        next_key = (
            register.key_at(ordered[n + 1].completed_at_us, ordered[n + 1].register_pos)
            if n + 1 < len(ordered)
            else None
        )
        if next_key != key:  # at each change of weights and at the end: exact floors
            for backer, value in exact.items():
                if credited.get(backer, 0) != floor(value):
                    problems.append(
                        f"{plant}: after mint {m.mwh_index}, {backer} is credited "
                        f"{credited.get(backer, 0)} units, entitled to floor({value})"
                    )
                    break
        undistributed = minted - sum(credited.values())
        if m.undistributed_after != undistributed:
            problems.append(
                f"{plant}: mint {m.mwh_index} records undistributed {m.undistributed_after}, "
                f"ledger gives {undistributed}"
            )
        if undistributed < 0:
            problems.append(f"{plant}: undistributed balance is negative after mint {m.mwh_index}")

    total_credited = sum(credited.values())
    undistributed = minted - total_credited
    # 1. conservation, with the undistributed balance as recorded by the last mint
    if ordered and minted != total_credited + ordered[-1].undistributed_after:
        problems.append(
            f"{plant}: conservation fails: minted {minted} != credited {total_credited} "
            f"+ undistributed {ordered[-1].undistributed_after}"
        )
    # 2. the undistributed balance is only what floors and share-less mints leave: at most
    # one unit short of a whole per backer who shared in some mint
    if not holders:
        if undistributed != no_share_units:
            problems.append(
                f"{plant}: undistributed {undistributed} != {no_share_units} (no shares ever)"
            )
    elif not undistributed < no_share_units + len(holders):
        problems.append(
            f"{plant}: undistributed {undistributed} is not < {no_share_units} + "
            f"{len(holders)} backers"
        )
    # 3. fairness
    for backer in sorted(set(exact) | set(credited)):
        gap = exact.get(backer, Fraction(0)) - credited.get(backer, 0)
        if not 0 <= gap < 1:
            problems.append(f"{plant}: {backer} entitlement minus credited is {gap}, not in [0, 1)")
    if balances is not None:
        shown = {b: u for b, u in balances.items() if u}
        if shown != {b: u for b, u in credited.items() if u}:
            problems.append(
                f"{plant}: balances differ from the sum of credits: {_diff(shown, credited)}"
            )
    return problems


def _diff(a: Mapping[str, int], b: Mapping[str, int]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k, 0) != b.get(k, 0))
    return ", ".join(f"{k}: {a.get(k, 0)} vs {b.get(k, 0)}" for k in keys[:5]) or "(none)"
