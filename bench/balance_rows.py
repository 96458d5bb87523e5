"""Review: time of a batch that mints one MWh, N backers in force, U units per MWh.

With U small against N (U = 1 token, decimals 0), a mint credits few backers; the
balances rows it writes are what this measures. Baseline of the same run: U = 10^8, where
every backer is credited at every mint (one credit row and one balances row each).

  python bench/balance_rows.py 100000
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from decimal import Decimal

from sqlalchemy import insert

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.daemon.jobs.accountant import Accountant
from heliod.rewards.energy import Bound
from heliod.rewards.ledger import PlantBook, PlantRules
from heliod.rewards.register import BEGINNING_US

T0_US = 1_483_228_800_000_000
MINUTE_US = 60_000_000
MINTS = 5


def mint_batches(backers: int, units: int) -> list[float]:
    """Seconds of each batch that minted, MINTS mints of one MWh each."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/h.db")
        with store.write() as conn:
            conn.execute(
                insert(t.shares),
                [
                    {
                        "plant": "p",
                        "backer": f"b{i:06d}",
                        "weight": str(100 + i % 900),
                        "valid_from_us": BEGINNING_US,
                        "stored_us": 0,
                    }
                    for i in range(backers)
                ],
            )
            values = [0, 1] + [1 + k * 1_000_000_001 for k in range(1, MINTS + 2)]
            conn.execute(
                insert(t.readings),
                [
                    {
                        "device": "inv",
                        "ts_us": T0_US + i * MINUTE_US,
                        "energy_mwh": e,
                        "received_us": 0,
                    }
                    for i, e in enumerate(values)
                ],
            )
        rules = PlantRules("p", Bound.of(Decimal(10**9), Decimal("1.2")), frozenset({"inv"}), None)
        acc = Accountant(store, [PlantBook(rules, units, "SLR", 0)], lambda: T0_US, batch_size=1)
        acc.batch()
        acc.batch()  # register and allocator built, baseline read
        times = []
        while len(times) < MINTS:
            start = time.perf_counter()
            result = acc.batch()
            if result.mints:
                times.append(time.perf_counter() - start)
        store.close()
    return times[1:]  # the first mint writes every new holder's row, whatever the code


def main() -> None:
    backers = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print("| backers | U | median mint batch (mints 2-5) |")
    print("|---:|---:|---:|")
    for units in (1, 10**8):
        median = statistics.median(mint_batches(backers, units))
        print(f"| {backers:,} | {units:,} | {median * 1000:.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
