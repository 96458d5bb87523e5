"""Applying a large share register inside the store's writer (issue 15, item 5).

  python bench/register_apply.py [--rows 100000] [--repeat 3]

A register answer or CSV of `rows` rows: `rows / 2` backers, each with a row ending a
share listed before the row that starts it, so every 0 amount is for a backer the store
does not know yet (the case the former refusal check scanned every row for). Times, with
the writer held (SQLite, the embedded store):
- `apply_rows` on an empty register, then the same rows again (all unchanged, every
  stored row read and compared);
- the floor: the same rows inserted with no check at all (driver-level executemany);
- the baseline: the former check (an `any()` over every row per unknown 0 amount), alone,
  at a few sizes, to show its quadratic growth without waiting hours for `rows`.
Prints one JSON line per measurement: the median of `--repeat` runs, in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from heliod.adapters.store import Store
from heliod.adapters.store.shares import apply_rows
from heliod.rewards.register import BEGINNING_US


@dataclass(frozen=True, slots=True)
class Row:
    backer: str
    amount: Decimal
    valid_from_us: int


def register(rows: int) -> list[Row]:
    """Ending rows first, then the rows that start each share."""
    n = rows // 2
    ends = [Row(f"backer-{i:07d}", Decimal(0), 1_700_000_000_000_000) for i in range(n)]
    starts = [Row(f"backer-{i:07d}", Decimal(f"{100 + i}.25"), BEGINNING_US) for i in range(n)]
    return ends + starts


def former_check(rows: Sequence[Row], known: set[str]) -> int:
    """The refusal check apply_rows ran before: quadratic in the rows."""
    refused = 0
    for row in rows:
        if (
            row.amount == 0
            and row.backer not in known
            and not any(r.backer == row.backer and r.amount > 0 for r in rows)
        ):
            refused += 1
    return refused


def median_ms(run: Callable[[int], object], repeat: int) -> dict[str, float]:
    """Median wall and CPU time of `repeat` runs (CPU time is what other processes on a
    shared machine cannot inflate)."""
    wall, cpu = [], []
    for i in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        run(i)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {
        "median_ms": round(statistics.median(wall), 1),
        "max_ms": round(max(wall), 1),
        "cpu_ms": round(statistics.median(cpu), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = register(args.rows)
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'heliod.db'}")

        def fresh(i: int) -> None:
            with store.write() as conn:
                apply_rows(conn, f"fresh{i}", rows, 1)

        def again(i: int) -> None:
            with store.write() as conn:
                assert apply_rows(conn, f"fresh{i}", rows, 2).added == 0

        def bare(i: int) -> None:
            values = [(f"bare{i}", r.backer, str(r.amount), r.valid_from_us, 1) for r in rows]
            with store.write() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO shares (plant, backer, weight, valid_from_us, stored_us) "
                    "VALUES (?, ?, ?, ?, ?)",
                    values,
                )

        report = [
            ("apply_rows, empty register", median_ms(fresh, args.repeat)),
            ("apply_rows, same rows again", median_ms(again, args.repeat)),
            ("insert only, no check (floor)", median_ms(bare, args.repeat)),
        ]
        store.close()
    for size in (2000, 4000, 8000):
        sample = register(size)
        report.append(
            (
                f"former check alone, {size} rows",
                median_ms(lambda _, sample=sample: former_check(sample, set()), 1),
            )
        )
    for what, figures in report:
        print(json.dumps({"rows": args.rows, "what": what, **figures}))


if __name__ == "__main__":
    main()
