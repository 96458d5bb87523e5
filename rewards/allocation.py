"""Allocation: each backer is credited the floor of an exact entitlement (docs/accounting.md).

A_b(n) = Σ_{i≤n} U × w_b(T_i) / W(T_i). We keep, per backer, the integer credited so far
and the remainder of A_b over a common denominator D (A_b = credited_b + rem_b / D,
0 ≤ rem_b < D). While the weights in force stay the same, a mint is one integer
multiply-add and one divmod per backer; D changes only when the weights do.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from math import gcd, lcm

from heliod.rewards.register import RegisterKey


def integer_weights(weights: Mapping[str, Decimal]) -> tuple[dict[str, int], int]:
    """Exact decimal weights scaled to integers by a common power of ten, and their sum."""
    parts: dict[str, tuple[int, int]] = {}
    places = 0
    for backer, w in weights.items():
        sign, digits, exponent = w.as_tuple()
        if not isinstance(exponent, int) or sign:
            raise ValueError(f"weight {w} of {backer!r} is not a finite non-negative decimal")
        coefficient = int("".join(map(str, digits)) or "0")
        parts[backer] = (coefficient, exponent)
        places = max(places, -exponent)
    scaled = {b: c * 10 ** (e + places) for b, (c, e) in parts.items()}
    return scaled, sum(scaled.values())


class Allocator:
    """Credits mints of one plant to its backers, exactly and in order."""

    def __init__(self, units_per_mint: int) -> None:
        if units_per_mint <= 0:
            raise ValueError("units_per_mint must be positive")
        self.units_per_mint = units_per_mint
        self.denominator = 1
        self.remainders: dict[str, int] = {}
        self.credited: dict[str, int] = {}
        self.minted = 0
        self._key: RegisterKey | None = None
        self._increments: dict[str, int] = {}

    @property
    def undistributed(self) -> int:
        """Units minted and not credited to anyone."""
        return self.minted - sum(self.credited.values())

    def use(self, key: RegisterKey, weights: Mapping[str, Decimal]) -> None:
        """Make `weights` (positive, as in force) the ones the next mints are split by."""
        if key == self._key:
            return
        self._key = key
        scaled, total = integer_weights(weights)
        if total == 0:
            self._increments = {}
            return
        d = lcm(self.denominator, total)
        if d != self.denominator:
            factor = d // self.denominator
            self.remainders = {b: r * factor for b, r in self.remainders.items()}
        per_weight = self.units_per_mint * (d // total)
        self._increments = {b: w * per_weight for b, w in scaled.items() if w}
        self.denominator = d
        self._reduce()

    def _reduce(self) -> None:
        g = self.denominator
        for v in self.remainders.values():
            g = gcd(g, v)
            if g == 1:
                return
        for v in self._increments.values():
            g = gcd(g, v)
            if g == 1:
                return
        if g > 1:
            self.denominator //= g
            self.remainders = {b: r // g for b, r in self.remainders.items()}
            self._increments = {b: v // g for b, v in self._increments.items()}

    def mint(self) -> dict[str, int]:
        """Credit one mint under the weights in use; returns units > 0 per backer."""
        return self.advance(1)

    def advance(self, count: int) -> dict[str, int]:
        """Credit `count` consecutive mints under the same weights; total units per backer."""
        if count <= 0:
            return {}
        self.minted += count * self.units_per_mint
        d = self.denominator
        rem = self.remainders
        credited = self.credited
        out: dict[str, int] = {}
        for backer, inc in self._increments.items():
            q, r = divmod(rem.get(backer, 0) + inc * count, d)
            rem[backer] = r
            if q:
                out[backer] = q
                credited[backer] = credited.get(backer, 0) + q
        return out

    def entitlement(self, backer: str) -> Fraction:
        """A_b: the exact units backer b is entitled to so far."""
        return self.credited.get(backer, 0) + Fraction(
            self.remainders.get(backer, 0), self.denominator
        )
