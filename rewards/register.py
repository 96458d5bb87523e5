"""The share register: effective-dated weights, read as each mint saw them (docs/accounting.md)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Context, Decimal

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


class Register:
    """The share register of one plant, answering "who held what at T, as known at row id"."""

    def __init__(self, rows: Iterable[ShareRow] = ()) -> None:
        self._rows: list[ShareRow] = sorted(rows, key=lambda r: r.id)
        self._ids: list[int] = [r.id for r in self._rows]
        self._by_upto: dict[int, tuple[list[int], list[ShareRow]]] = {}
        self._last: tuple[RegisterKey, dict[str, Decimal]] | None = None

    def add(self, row: ShareRow) -> None:
        """Append a row stored after every row already known."""
        if self._rows and row.id <= self._rows[-1].id:
            raise ValueError(f"share row {row.id} is not after row {self._rows[-1].id}")
        self._rows.append(row)
        self._ids.append(row.id)

    @property
    def last_id(self) -> int:
        """Id of the newest row, 0 when the register is empty."""
        return self._rows[-1].id if self._rows else 0

    def _view(self, upto_id: int) -> tuple[int, list[int], list[ShareRow]]:
        n = bisect_right(self._ids, upto_id)
        cached = self._by_upto.get(n)
        if cached is None:
            visible = sorted(self._rows[:n], key=lambda r: (r.valid_from_us, r.id))
            cached = ([r.valid_from_us for r in visible], visible)
            if len(self._by_upto) >= 2:  # bounded: the view in use and the newest
                self._by_upto.pop(min(self._by_upto))
            self._by_upto[n] = cached
        return n, cached[0], cached[1]

    def key_at(self, t_us: int, upto_id: int) -> RegisterKey:
        """A key equal for two queries exactly when they see the same rows."""
        n, starts, _ = self._view(upto_id)
        return n, bisect_right(starts, t_us)

    def weights_at(self, t_us: int, upto_id: int) -> tuple[RegisterKey, dict[str, Decimal]]:
        """Positive weights in force at `t_us` from rows with id ≤ `upto_id`, with their key."""
        n, starts, visible = self._view(upto_id)
        key = (n, bisect_right(starts, t_us))
        if self._last is not None and self._last[0] == key:
            return self._last
        latest: dict[str, Decimal] = {}
        for row in visible[: key[1]]:  # sorted by (valid_from, id): the last one wins
            latest[row.backer] = row.weight
        self._last = (key, {b: w for b, w in latest.items() if w > 0})
        return self._last
