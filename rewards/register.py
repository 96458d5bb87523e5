"""The share register: effective-dated weights, read as each mint saw them (docs/accounting.md)."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from itertools import islice
from math import gcd
from operator import le
from typing import Any

from heliod.rewards.numbers import exact

BEGINNING_US = -(2**62)  # "valid_from" omitted: in force since the beginning of time
MAX_AMOUNT = Decimal(10) ** 15  # a larger amount is refused (docs/cli.md, backers import)
AMOUNT_PLACES = 9
_ZERO = Decimal(0)
_AMOUNT_DIGITS = Context(prec=MAX_AMOUNT.adjusted() + AMOUNT_PLACES + 1)  # holds every amount


def register_amount(value: Decimal) -> Decimal:
    """A register amount as stored: 0..10^15 with at most 9 decimal places, trailing
    zeros dropped; ValueError (never a rounding) for anything else."""
    taken = exact(value, low=_ZERO, high=MAX_AMOUNT, places=AMOUNT_PLACES)
    return taken.normalize(_AMOUNT_DIGITS) if taken else _ZERO


def is_register_amount(amount: Decimal) -> bool:
    """True for an amount as `register_amount` gives it (a cheap check, for the store)."""
    exponent = amount.as_tuple().exponent  # of the shortest form: minus its decimal places
    return (
        _ZERO <= amount <= MAX_AMOUNT and isinstance(exponent, int) and exponent >= -AMOUNT_PLACES
    )


@dataclass(frozen=True, slots=True)
class ShareRow:
    """One stored register row: from `valid_from_us` on, `backer` financed `weight`."""

    id: int  # store order: a row applies only to mints committed after it was stored
    backer: str
    weight: Decimal
    valid_from_us: int


RegisterKey = tuple[int, int]


def scaled(weight: Decimal) -> tuple[int, int]:
    """A finite non-negative decimal as (integer, places): weight = integer / 10^places."""
    sign, digits, exponent = weight.as_tuple()
    if not isinstance(exponent, int) or sign:
        raise ValueError(f"weight {weight} is not a finite non-negative decimal")
    coefficient = 0
    for d in digits:
        coefficient = coefficient * 10 + d
    if exponent >= 0:
        return coefficient * 10**exponent, 0
    return coefficient, -exponent


class InForce(Mapping[str, Decimal]):
    """The positive weights in force for one register key, as integers.

    `backers` is sorted; `weights[i]` × `common` / 10^`places` is backer i's exact weight,
    and the `weights` have no common factor (shares are weights[i] / Σ weights). Built once
    per key and shared by every mint under it; never changed after.
    """

    __slots__ = ("backers", "common", "key", "places", "weights")

    def __init__(
        self, key: RegisterKey, backers: list[str], weights: list[int], common: int, places: int
    ) -> None:
        self.key = key
        self.backers = backers
        self.weights = weights
        self.common = common
        self.places = places

    @classmethod
    def of(cls, key: RegisterKey, weights: Mapping[str, Decimal]) -> InForce:
        """From a mapping of backer → weight (zero weights are left out)."""
        parts = {b: scaled(w) for b, w in weights.items()}
        places = max((p for _, p in parts.values()), default=0)
        ints = {b: c * 10 ** (places - p) for b, (c, p) in parts.items()}
        backers = sorted(b for b, w in ints.items() if w > 0)
        return _reduced(key, backers, [ints[b] for b in backers], places)

    def __getitem__(self, backer: str) -> Decimal:
        i = bisect_left(self.backers, backer)
        if i == len(self.backers) or self.backers[i] != backer:
            raise KeyError(backer)
        return self._amount(self.weights[i])

    def __iter__(self) -> Iterator[str]:
        return iter(self.backers)

    def __len__(self) -> int:
        return len(self.backers)

    def _amount(self, w: int) -> Decimal:
        value = Decimal(w * self.common).scaleb(-self.places, _EXACT)
        return value.normalize(_EXACT) if value else _ZERO


_EXACT = Context(prec=10_000)  # scaling by a power of ten never rounds at this precision


def _reduced(key: RegisterKey, backers: list[str], weights: list[int], places: int) -> InForce:
    common = 0
    for w in weights:
        common = gcd(common, w)
        if common == 1:
            break
    if common > 1:
        weights = [w // common for w in weights]
    return InForce(key, backers, weights, max(common, 1), places)


class Register:
    """The share register of one plant, answering "who held what at T, as known at row id".

    Rows are kept as columns (no object per row), ordered by (backer, valid_from, id), so
    the weights in force come out sorted by backer in one pass; the latest answer is kept,
    since the register changes rarely and every mint under the same rows asks the same.
    """

    def __init__(self, rows: Iterable[ShareRow] = ()) -> None:
        self._backers: list[str] = []  # columns, in (backer, valid_from, id) order
        self._weights: list[int] = []  # × 10^places
        self._starts = array("q")
        self._row_ids = array("q")
        self._ids = array("q")  # every row id, in store order
        self._places = 0
        # Rows added since the last query, in store order (their ids: the tail of _ids).
        self._new_backers: list[str] = []
        self._new_weights: list[int] = []
        self._new_starts = array("q")
        self._by_upto: dict[int, array[int]] = {}
        self._last: InForce | None = None
        self.extend((r.id, r.backer, r.weight, r.valid_from_us) for r in sorted(rows, key=_id))

    def add(self, row: ShareRow) -> None:
        """Append a row stored after every row already known."""
        self.extend([(row.id, row.backer, row.weight, row.valid_from_us)])

    def extend(self, rows: Iterable[tuple[int, str, Decimal, int]]) -> None:
        """Append rows (id, backer, weight, valid_from_us), each stored after the ones before."""
        interned: dict[int, int] = {}
        for row_id, backer, weight, valid_from in rows:
            if self._ids and row_id <= self._ids[-1]:
                raise ValueError(f"share row {row_id} is not after row {self._ids[-1]}")
            value, places = scaled(weight)
            if places > self._places:
                factor = 10 ** (places - self._places)
                self._weights = [w * factor for w in self._weights]
                self._new_weights = [w * factor for w in self._new_weights]
                interned = {}
                self._places = places
            value *= 10 ** (self._places - places)
            self._ids.append(row_id)
            self._new_backers.append(backer)
            self._new_weights.append(interned.setdefault(value, value))
            self._new_starts.append(valid_from)

    @property
    def last_id(self) -> int:
        """Id of the newest row, 0 when the register is empty."""
        return self._ids[-1] if self._ids else 0

    def __len__(self) -> int:
        return len(self._ids)

    def _columns(self) -> None:
        """Merge the rows added since the last query into the sorted columns."""
        if not self._new_backers:
            return
        backers = self._backers + self._new_backers
        weights = self._weights + self._new_weights
        starts = self._starts + self._new_starts
        row_ids = self._row_ids + self._ids[len(self._row_ids) :]
        self._new_backers, self._new_weights, self._new_starts = [], [], array("q")
        if _ascending(backers) and _ascending(starts):
            # Already in order (e.g. one import in backer order, all from the same time;
            # equal backers then run by id): no sort, no copy.
            self._backers, self._weights, self._starts, self._row_ids = (
                backers,
                weights,
                starts,
                row_ids,
            )
        else:
            # Two stable sorts give (backer, valid_from, id): the old columns are in that
            # order and every new row has a higher id than every old one.
            order = sorted(range(len(backers)), key=starts.__getitem__)
            order.sort(key=backers.__getitem__)
            self._backers = [backers[i] for i in order]
            self._weights = [weights[i] for i in order]
            self._starts = array("q", [starts[i] for i in order])
            self._row_ids = array("q", [row_ids[i] for i in order])
        self._by_upto.clear()
        self._last = None

    def _starts_upto(self, upto_id: int) -> tuple[int, array[int]]:
        n = bisect_right(self._ids, upto_id)
        cached = self._by_upto.get(n)
        if cached is None:
            self._columns()
            if n == len(self._ids) and _ascending(self._starts):
                cached = self._starts  # never changed in place: replaced by _columns
            elif n == len(self._ids):
                cached = array("q", sorted(self._starts))
            else:
                pairs = zip(self._starts, self._row_ids, strict=True)
                cached = array("q", sorted(s for s, i in pairs if i <= upto_id))
            if len(self._by_upto) >= 2:  # bounded: the view in use and the newest
                self._by_upto.pop(min(self._by_upto))
            self._by_upto[n] = cached
        return n, cached

    def key_at(self, t_us: int, upto_id: int) -> RegisterKey:
        """A key equal for two queries exactly when they see the same rows."""
        n, starts = self._starts_upto(upto_id)
        return n, bisect_right(starts, t_us)

    def weights_at(self, t_us: int, upto_id: int) -> InForce:
        """Positive weights in force at `t_us` from rows with id ≤ `upto_id`, with their key."""
        key = self.key_at(t_us, upto_id)
        if self._last is not None and self._last.key == key:
            return self._last
        self._columns()
        backers: list[str] = []
        weights: list[int] = []
        current: str | None = None
        weight = 0
        every = key[0] == len(self._ids)
        # Within a backer, rows run by (valid_from, id): the last one visible wins.
        for backer, w, start, row_id in zip(
            self._backers, self._weights, self._starts, self._row_ids, strict=True
        ):
            if backer != current:
                if weight:
                    backers.append(current)  # type: ignore[arg-type]
                    weights.append(weight)
                current, weight = backer, 0
            if start <= t_us and (every or row_id <= upto_id):
                weight = w
        if weight:
            backers.append(current)  # type: ignore[arg-type]
            weights.append(weight)
        self._last = _reduced(key, backers, weights, self._places)
        return self._last


def _ascending(values: Sequence[Any]) -> bool:
    """True when `values` never decreases (a pass in C, nothing copied)."""
    return all(map(le, values, islice(values, 1, None)))


def _id(row: ShareRow) -> int:
    return row.id
