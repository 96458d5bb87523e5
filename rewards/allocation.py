"""Allocation: each backer is credited the floor of an exact entitlement (docs/accounting.md).

A_b(n) = Σ_{i≤n} U × w_b(T_i) / W(T_i). We keep, per backer, the integer credited so far
and the remainder of A_b over a common denominator D (A_b = credited_b + rem_b / D,
0 ≤ rem_b < D). While the weights in force stay the same, a mint is one integer
multiply-add and one divmod per backer; D changes only when the weights do.

The state is kept in lists aligned with `backers` (everyone ever in force, sorted), not
in an object or a dictionary entry per backer: a plant may have a million backers, and a
mint walks them once.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping, MutableSequence
from fractions import Fraction
from itertools import compress, repeat
from math import gcd, lcm
from operator import add, floordiv, mod, mul, or_

from heliod.rewards.register import InForce

_NO_ONE = InForce((-1, -1), [], [], 1, 0)
_SLICE = 65_536  # backers per pass of a mint
_Q = 2**63  # array('q') holds the integers below this


class Credits(Mapping[str, int]):
    """What one mint (or a run of mints) credits: units > 0 per backer, sorted by backer."""

    __slots__ = ("_backers", "_positions", "units")

    def __init__(
        self, backers: list[str], positions: array[int], units: MutableSequence[int]
    ) -> None:
        self._backers = backers  # the allocator's backers when it was made (never changed)
        self._positions = positions
        self.units = units

    def pairs(self) -> Iterator[tuple[str, int]]:
        """(backer, units), sorted by backer: the cheap way through every credit."""
        return zip(self.names(), self.units)  # noqa: B905 - the same length by construction

    def names(self) -> Iterator[str]:
        """The backers credited, sorted (in step with `units`)."""
        return map(self._backers.__getitem__, self._positions)

    def __getitem__(self, backer: str) -> int:
        p = bisect_left(self._backers, backer)
        if p < len(self._backers) and self._backers[p] == backer:
            i = bisect_left(self._positions, p)  # positions run in backer order
            if i < len(self._positions) and self._positions[i] == p:
                return self.units[i]
        raise KeyError(backer)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self.pairs()) == dict(other)

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[str]:
        return self.names()

    def __len__(self) -> int:
        return len(self.units)

    def total(self) -> int:
        """Units credited, all backers together."""
        return sum(self.units)


class Allocator:
    """Credits mints of one plant to its backers, exactly and in order."""

    def __init__(self, units_per_mint: int) -> None:
        if units_per_mint <= 0:
            raise ValueError("units_per_mint must be positive")
        self.units_per_mint = units_per_mint
        self.denominator = 1
        self.backers: list[str] = []  # everyone ever in force, sorted; never changed in place
        self.remainders: list[int] = []
        self.credited: list[int] = []
        self.changed = bytearray()  # 1: credited, or in force for the first time, since taken
        self.minted = 0
        self.credited_total = 0
        self._in_force = _NO_ONE
        self._positions: list[int] | None = None  # in force i → backers[...]; None: the same
        self._multiplier = 0  # increment of in-force backer i per mint: weights[i] × this

    @property
    def undistributed(self) -> int:
        """Units minted and not credited to anyone."""
        return self.minted - self.credited_total

    def use(self, in_force: InForce) -> None:
        """Make `in_force` (from the register) the weights the next mints are split by."""
        if in_force.key == self._in_force.key:
            return
        self._in_force = in_force
        total = sum(in_force.weights)
        if total == 0:
            self._positions = None
            return
        self._align(in_force.backers)
        d = lcm(self.denominator, total)
        if d != self.denominator:
            factor = d // self.denominator
            self.remainders = [r * factor for r in self.remainders]
        self._multiplier = self.units_per_mint * (d // total)
        self.denominator = d
        self._reduce()

    def _align(self, backers: list[str]) -> None:
        """Add the backers in force for the first time; map in-force positions to ours."""
        if backers is self.backers or backers == self.backers:
            self._positions = None
            return
        old, n = self.backers, len(self.backers)
        if not old:
            self.backers = backers
            self.remainders = [0] * len(backers)
            self.credited = [0] * len(backers)
            self.changed = bytearray(b"\x01") * len(backers)
            self._positions = None
            return
        merged: list[str] = []
        rem: list[int] = []
        cred: list[int] = []
        changed = bytearray()
        positions: list[int] = []
        i = 0
        for b in backers:  # both sorted: a merge
            while i < n and old[i] < b:
                merged.append(old[i])
                rem.append(self.remainders[i])
                cred.append(self.credited[i])
                changed.append(self.changed[i])
                i += 1
            positions.append(len(merged))
            merged.append(b)
            if i < n and old[i] == b:
                rem.append(self.remainders[i])
                cred.append(self.credited[i])
                changed.append(self.changed[i])
                i += 1
            else:
                rem.append(0)
                cred.append(0)
                changed.append(1)
        merged += old[i:]
        rem += self.remainders[i:]
        cred += self.credited[i:]
        changed += self.changed[i:]
        self.backers, self.remainders, self.credited, self.changed = merged, rem, cred, changed
        self._positions = None if len(merged) == len(backers) else positions

    def _reduce(self) -> None:
        g = gcd(self.denominator, self._multiplier)
        for v in self.remainders:
            if g == 1:
                return
            g = gcd(g, v)
        if g > 1:
            self.denominator //= g
            self._multiplier //= g
            self.remainders = [r // g for r in self.remainders]

    def mint(self) -> Credits:
        """Credit one mint under the weights in use; returns units > 0 per backer."""
        return self.advance(1)

    def advance(self, count: int) -> Credits:
        """Credit `count` consecutive mints under the same weights; total units per backer."""
        positions = array("q")  # 8 bytes per credit, not an int object
        # No credit exceeds what the mints give out: 8 bytes per credit too where that fits.
        units: MutableSequence[int] = array("q") if count * self.units_per_mint < _Q else []
        if count <= 0:
            return Credits(self.backers, positions, units)
        self.minted += count * self.units_per_mint
        weights = self._in_force.weights
        if not weights:
            return Credits(self.backers, positions, units)
        d = self.denominator
        m = self._multiplier * count
        at = self._positions
        remainders, credited, changed = self.remainders, self.credited, self.changed
        # In bulk, the loops in C, a slice at a time (the temporary lists stay small):
        # numerators, then floors and remainders.
        for a in range(0, len(weights), _SLICE):
            b = a + _SLICE
            rem = remainders[a:b] if at is None else [remainders[p] for p in at[a:b]]
            numerators = list(map(add, rem, map(mul, weights[a:b], repeat(m))))
            floors = list(map(floordiv, numerators, repeat(d)))
            rest = list(map(mod, numerators, repeat(d)))
            del numerators, rem
            if at is None:
                remainders[a:b] = rest
                credited[a:b] = map(add, credited[a:b], floors)
                changed[a:b] = bytes(map(or_, changed[a:b], map(bool, floors)))
                positions.extend(compress(range(a, a + len(floors)), floors))
            else:
                for p, r, q in zip(at[a:b], rest, floors, strict=True):
                    remainders[p] = r
                    if q:
                        credited[p] += q
                        changed[p] = 1
                        positions.append(p)
            units.extend(compress(floors, floors))
        self.credited_total += sum(units)
        return Credits(self.backers, positions, units)

    def take_changed(self, uncredited: bool = False) -> tuple[Iterator[str], Iterator[int]]:
        """The backers changed since the last time (sorted) and their credited totals, in
        step; their marks are cleared. `uncredited`: only those whose total is still 0
        (the backers in force for the first time that no mint credited yet)."""
        positions = array("q", compress(range(len(self.changed)), self.changed))
        if uncredited:
            credited = self.credited
            positions = array("q", [p for p in positions if not credited[p]])
        self.changed = bytearray(len(self.backers))
        names = map(self.backers.__getitem__, positions)
        return names, map(self.credited.__getitem__, positions)

    def position(self, backer: str) -> int | None:
        """Where `backer` is in `backers` (None: never in force)."""
        i = bisect_left(self.backers, backer)
        return i if i < len(self.backers) and self.backers[i] == backer else None

    def credited_of(self, backer: str) -> int:
        """Units credited to `backer` so far."""
        p = self.position(backer)
        return 0 if p is None else self.credited[p]

    def balances(self) -> dict[str, int]:
        """Units credited so far per backer ever in force (0 included)."""
        return dict(zip(self.backers, self.credited, strict=True))

    def entitlement(self, backer: str) -> Fraction:
        """A_b: the exact units backer b is entitled to so far."""
        p = self.position(backer)
        if p is None:
            return Fraction(0)
        return self.credited[p] + Fraction(self.remainders[p], self.denominator)
