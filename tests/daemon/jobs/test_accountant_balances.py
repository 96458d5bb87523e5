"""Review: the balances rows a mint writes stay proportional to what the mint changed.

A mint credits at most a few backers when U is small against the number of backers in
force (U = 1 with 2,000 equal backers: nobody reaches a whole unit for 2,000 mints). The
zero rows of docs/accounting.md, "Balances", are needed once per backer, the first time
the backer is in force at a mint; writing every in-force backer's row again at every mint
costs 100,000 upserts per mint with 100,000 backers, with the store's only writer held.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.daemon.jobs.accountant import Accountant
from heliod.rewards.energy import Bound
from heliod.rewards.ledger import PlantBook, PlantRules
from heliod.rewards.readings import ENERGY, Reading
from heliod.rewards.register import BEGINNING_US

BACKERS = 2000
T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store whose plant has 2,000 equal backers in force from the beginning."""
    opened = Store.open(db_url)
    with opened.write() as conn:
        conn.execute(
            insert(t.shares),
            [
                {
                    "plant": "p",
                    "backer": f"b{i:05d}",
                    "weight": "1",
                    "valid_from_us": BEGINNING_US,
                    "stored_us": 0,
                }
                for i in range(BACKERS)
            ],
        )
    yield opened
    opened.close()


def _balance_writes(store: Store) -> list[int]:
    """Counts the balances rows each INSERT … ON CONFLICT statement writes (a list the
    test reads), observed on the engine, the database doing the writing: the rows sent
    to an executemany, the rows a single statement inserted or updated (the mint's
    credits added by the store)."""
    writes: list[int] = []

    @event.listens_for(store.engine, "after_cursor_execute")
    def count(_c: Any, cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO BALANCES"):
            writes.append(len(params) if many else cur.rowcount)

    return writes


def _ingest(store: Store, values: list[int]) -> None:
    """Device inv's counter (Wh), a reading a minute from T0."""
    readings = [
        Reading("inv", T0 + timedelta(minutes=i), {ENERGY: Decimal(v)})
        for i, v in enumerate(values)
    ]
    store.ingest(readings, int((T0 + timedelta(days=1)).timestamp() * 1e6))


def test_a_mint_that_credits_nobody_rewrites_no_balance(store: Store) -> None:
    rules = PlantRules("p", Bound.of(Decimal(10**6), Decimal("1.2")), frozenset({"inv"}), None)
    accountant = Accountant(store, [PlantBook(rules, 1, "SLR", 0)], lambda: 0, batch_size=1)
    # 0, 1 Wh, then one MWh per reading: each reading confirms the one before it.
    values = [0, 1, 1_000_001, 2_000_001, 3_000_001, 4_000_001]
    _ingest(store, values)
    writes = _balance_writes(store)
    per_mint: list[int] = []
    while True:
        before = sum(writes)
        result = accountant.batch()
        if result.mints:
            per_mint.append(sum(writes) - before)
        if result.caught_up and not result.readings:
            break
    assert len(per_mint) == 3
    # Mint 1 finds 2,000 new holders: their zero rows are written once.
    assert per_mint[0] == BACKERS
    # U = 1 over 2,000 equal shares: mints 2 and 3 change nobody's credited total.
    assert per_mint[1:] == [0, 0], per_mint


@pytest.mark.parametrize("batch_size", [1, 100])
def test_balances_stay_exact_past_64_bits(db_url: str, batch_size: int) -> None:
    """U = 5·10^18 to weights 1 and 2: the second mint takes the plant's minted units past
    2^63 - 1, the third b's balance (10^19). The store adds each mint's credits where its
    sum is exact, and the accountant writes the totals where it could not be (SQLite's
    integers): one batch per mint, or the three mints in one batch."""
    store = Store.open(db_url)
    with store.write() as conn:
        conn.execute(
            insert(t.shares),
            [
                {"plant": "p", "backer": b, "weight": w, "valid_from_us": BEGINNING_US}
                | {"stored_us": 0}
                for b, w in (("a", "1"), ("b", "2"))
            ],
        )
    rules = PlantRules("p", Bound.of(Decimal(10**6), Decimal("1.2")), frozenset({"inv"}), None)
    units = 5 * 10**18
    accountant = Accountant(store, [PlantBook(rules, units, "SLR", 18)], lambda: 0, batch_size)
    values = [0, 1, 1_000_001, 2_000_001, 3_000_001, 4_000_001]
    _ingest(store, values)
    seen: list[dict[str, int]] = []
    while True:
        result = accountant.batch()
        if result.mints:
            with store.read() as conn:
                rows = conn.execute(select(t.balances.c.backer, t.balances.c.units)).all()
            seen.append({str(b): int(u) for b, u in rows})
        if result.caught_up and not result.readings:
            break
    # After n mints, the floors of the exact entitlements: n·U/3 and 2·n·U/3.
    expected = [{"a": n * units // 3, "b": 2 * n * units // 3} for n in (1, 2, 3)]
    assert seen == (expected if batch_size == 1 else expected[-1:])
    with store.read() as conn:
        text = conn.execute(select(t.balances.c.units).where(t.balances.c.backer == "b")).scalar()
    assert int(text) == 10**19
    store.close()


def test_stray_credit_rows_of_a_damaged_store_are_not_added_to_balances(store: Store) -> None:
    """Rows in `credits` for a mint number not yet minted (an edited or damaged store):
    the store adds only the rows the mint itself wrote, so balances stay the allocator's
    (`ledger verify` names the stray rows)."""
    rules = PlantRules("p", Bound.of(Decimal(10**6), Decimal("1.2")), frozenset({"inv"}), None)
    accountant = Accountant(store, [PlantBook(rules, 4000, "SLR", 0)], lambda: 0, batch_size=1)
    values = [0, 1, 1_000_001, 2_000_001, 3_000_001]  # mints 1 and 2 (the last confirms)
    stray = {"plant": "p", "mwh_index": 2, "backer": "b00000", "units": "5"}
    with store.write() as conn:
        conn.execute(insert(t.credits), [stray, stray])  # the same row twice
    _ingest(store, values)
    while True:
        result = accountant.batch()
        if result.caught_up and not result.readings:
            break
    with store.read() as conn:
        balances = dict(conn.execute(select(t.balances.c.backer, t.balances.c.units)).all())
        minted = conn.execute(select(t.mints.c.mwh_index)).scalars().all()
    assert sorted(minted) == [1, 2]
    assert {int(u) for u in balances.values()} == {4}  # 2 × 4,000 units over 2,000 backers
