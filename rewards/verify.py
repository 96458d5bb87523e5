"""The ledger's invariants (docs/accounting.md), checked from what is stored, exactly.

Nothing here is shared with the live path: the weights in force are recomputed from the
raw register rows by the contract's sentence (`weights_in_force`), each credit from exact
`fractions.Fraction` entitlements, each register position from the rows' stored times
(rewards/verify_rows.py), each push body from the ledger (rewards/verify_events.py). A
bug in `register.Register` or `allocation.Allocator` therefore cannot hide in its check.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import floor
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MintRecord:
    """A stored mint as `ledger verify` reads it."""

    plant: str
    mwh_index: int
    completed_at_us: int
    units: int
    register_pos: int
    undistributed_after: int
    committed_us: int | None = None  # when its transaction began (None: not stored yet)


class Row(Protocol):
    """A stored register row (register.ShareRow fits)."""

    @property
    def id(self) -> int: ...
    @property
    def backer(self) -> str: ...
    @property
    def weight(self) -> Decimal: ...
    @property
    def valid_from_us(self) -> int: ...


class WeightsInForce:
    """docs/accounting.md, "Who gets the units", read literally.

    "The weight of b at time T is b's latest row with valid_from ≤ T (latest by
    valid_from; of two rows with the same valid_from, the one stored last)", among the
    rows stored before the mint (id ≤ its register position); a weight of 0 means b left.
    Each distinct answer is one literal scan of the rows; it is remembered under the
    number of rows visible and the number of those in force, which determine it.
    """

    def __init__(self, rows: Sequence[Row]) -> None:
        self._rows = sorted(rows, key=lambda r: r.id)
        self._ids = [r.id for r in self._rows]
        self._starts: dict[int, list[int]] = {}  # rows visible -> their valid_from, sorted
        self._memo: dict[tuple[int, int], dict[str, Decimal]] = {}
        self._exact: tuple[tuple[int, int], dict[str, Fraction]] | None = None

    def at(self, t_us: int, position: int) -> dict[str, Fraction]:
        """Positive weights in force at `t_us` from rows with id ≤ `position`, exactly."""
        key = self._key(t_us, position)
        if self._exact is None or self._exact[0] != key:
            decimals = self.decimals_at(t_us, position)
            self._exact = (key, {b: Fraction(w) for b, w in decimals.items()})
        return self._exact[1]

    def _key(self, t_us: int, position: int) -> tuple[int, int]:
        visible = bisect_right(self._ids, position)
        starts = self._starts.get(visible)
        if starts is None:
            starts = self._starts[visible] = sorted(r.valid_from_us for r in self._rows[:visible])
        return visible, bisect_right(starts, t_us)

    def decimals_at(self, t_us: int, position: int) -> dict[str, Decimal]:
        """The same weights as the register rows wrote them (for the log's register tree)."""
        key = self._key(t_us, position)
        visible = key[0]
        found = self._memo.get(key)
        if found is None:
            latest: dict[str, Row] = {}
            for r in self._rows[:visible]:
                if r.valid_from_us > t_us:
                    continue
                held = latest.get(r.backer)
                if held is None or (r.valid_from_us, r.id) > (held.valid_from_us, held.id):
                    latest[r.backer] = r
            found = {b: r.weight for b, r in latest.items() if r.weight > 0}
            if len(self._memo) >= 4:  # bounded: mints in order reuse the last few answers
                self._memo.pop(next(iter(self._memo)))
            self._memo[key] = found
        return found


def verify_plant(
    plant: str,
    *,
    units_per_mwh: int,
    mints: Sequence[MintRecord],
    credits: Mapping[int, Mapping[str, int]],
    rows: Sequence[Row],
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

    weights = WeightsInForce(rows)
    exact: dict[str, Fraction] = {}  # A_b after the mints so far
    credited: dict[str, int] = {}
    minted = 0
    no_share_units = 0
    holders: set[str] = set()  # backers with a share in force at some mint
    for m in ordered:
        if m.units != units_per_mwh:
            problems.append(
                f"{plant}: mint {m.mwh_index} has {m.units} units, expected {units_per_mwh}"
            )
        minted += m.units
        w = weights.at(m.completed_at_us, m.register_pos)
        holders.update(w)
        total = sum(w.values(), Fraction(0))
        expected: dict[str, int] = {}
        if total == 0:
            no_share_units += m.units
        for backer, weight in w.items():
            before = exact.get(backer, Fraction(0))
            after = before + m.units * weight / total
            exact[backer] = after
            if floor(after) > floor(before):
                expected[backer] = floor(after) - floor(before)
        stored = dict(credits.get(m.mwh_index, {}))
        for backer, units in stored.items():
            if units <= 0:
                problems.append(
                    f"{plant}: mint {m.mwh_index} credits {backer} {units} units (not > 0)"
                )
            credited[backer] = credited.get(backer, 0) + units
        if stored != expected:
            problems.append(
                f"{plant}: mint {m.mwh_index} credits differ from the exact entitlements: "
                f"stored vs entitled {_diff(stored, expected)}"
            )
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
