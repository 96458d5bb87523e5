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
from sqlalchemy import event, insert

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
    """Counts the balances rows each INSERT … ON CONFLICT statement sends (a list the
    test reads), observed on the engine, the database doing the writing."""
    writes: list[int] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def count(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO BALANCES"):
            writes.append(len(params) if many else 1)

    return writes


def test_a_mint_that_credits_nobody_rewrites_no_balance(store: Store) -> None:
    rules = PlantRules("p", Bound.of(Decimal(10**6), Decimal("1.2")), frozenset({"inv"}), None)
    accountant = Accountant(store, [PlantBook(rules, 1, "SLR", 0)], lambda: 0, batch_size=1)
    # 0, 1 Wh, then one MWh per reading: each reading confirms the one before it.
    values = [0, 1, 1_000_001, 2_000_001, 3_000_001, 4_000_001]
    now = int((T0 + timedelta(days=1)).timestamp() * 1e6)
    store.ingest(
        [
            Reading("inv", T0 + timedelta(minutes=i), {ENERGY: Decimal(v)})
            for i, v in enumerate(values)
        ],
        now,
    )
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
