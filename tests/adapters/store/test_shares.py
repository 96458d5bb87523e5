"""Applying register rows in the writer: linear in the rows, bounded amounts, all or nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.shares import RegisterRefused, apply_rows
from heliod.rewards.register import BEGINNING_US


@dataclass(frozen=True, slots=True)
class Row:
    backer: str
    amount: Decimal
    valid_from_us: int


def ending_rows(n: int) -> list[Row]:
    """n backers, each with a share and a row ending it, the ending rows listed first: every
    0 amount is for a backer the store does not know yet (the expensive case)."""
    ends = [Row(f"b{i:06d}", Decimal(0), 2_000_000) for i in range(n)]
    starts = [Row(f"b{i:06d}", Decimal(100 + i), BEGINNING_US) for i in range(n)]
    return ends + starts


def _applied_in(store: Store, plant: str, rows: list[Row]) -> float:
    t0 = time.perf_counter()
    with store.write() as conn:
        apply_rows(conn, plant, rows, 1)
    return time.perf_counter() - t0


def test_applying_rows_grows_linearly_not_quadratically(tmp_path: Path) -> None:
    """8 times the rows: a quadratic scan takes ~64 times as long, a linear pass ~8."""
    store = Store.open(f"sqlite:///{tmp_path / 'h.db'}")
    small, big = ending_rows(1000), ending_rows(8000)
    _applied_in(store, "warm", small)
    t_small = min(_applied_in(store, f"s{i}", small) for i in range(3))
    t_big = min(_applied_in(store, f"b{i}", big) for i in range(2))
    store.close()
    assert t_big < 24 * t_small, (t_small, t_big)


def test_out_of_bounds_amounts_are_refused_and_nothing_is_stored(db_url: str) -> None:
    """The parsers name the line; the store refuses such rows too, whoever built them."""
    store = Store.open(db_url)
    rows = [
        Row("ann", Decimal(10) ** 15, BEGINNING_US),  # the largest amount taken
        Row("bob", Decimal(10) ** 15 + 1, BEGINNING_US),
        Row("cy", Decimal("1E-999999"), BEGINNING_US),
        Row("dan", Decimal("0.123456789"), BEGINNING_US),
        Row("eve", Decimal(0), BEGINNING_US),  # ends a share eve never held
    ]
    with pytest.raises(RegisterRefused) as refused, store.write() as conn:
        apply_rows(conn, "p", rows, 1)
    assert refused.value.problems == [
        "backer 'bob': amount 1000000000000001 is not 0..10^15 with at most 9 decimal places",
        "backer 'cy': amount 1E-999999 is not 0..10^15 with at most 9 decimal places",
        "unknown backer 'eve': a 0 amount ends a share, but eve never held one in plant p",
    ]
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.shares)).scalar() == 0
    with store.write() as conn:
        result = apply_rows(conn, "p", [rows[0], rows[3]], 1)
    assert (result.added, result.unchanged) == (2, 0)
    store.close()


def test_a_refusal_lists_twenty_problems_and_counts_the_rest(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'h.db'}")
    rows = [Row(f"x{i}", Decimal(0), BEGINNING_US) for i in range(25)]
    with pytest.raises(RegisterRefused) as refused, store.write() as conn:
        apply_rows(conn, "p", rows, 1)
    assert len(refused.value.problems) == 21
    assert refused.value.problems[-1] == "… and 5 more problems"
    store.close()
