"""The share register: effective-dated weights, read as each mint saw them (docs/accounting.md)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

BEGINNING_US = -(2**62)  # "valid_from" omitted: in force since the beginning of time


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

    def backers_ever(self, upto_id: int | None = None) -> set[str]:
        """Backers who ever held a positive weight (in rows stored up to `upto_id`)."""
        return {
            r.backer for r in self._rows if r.weight > 0 and (upto_id is None or r.id <= upto_id)
        }

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
