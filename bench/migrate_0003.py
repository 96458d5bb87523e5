"""Review: how long migration 0003 holds `heliod run` before READY (SQLite).

0003 rebuilds `readings` (every row copied) inside `Store.open`, before the daemon sends
READY=1; systemd's default TimeoutStartSec is 90 s and heliod.service sets none. Baseline
of the same run: a second `Store.open` of the migrated file (the schema check and
`PRAGMA quick_check` every start does).

  python bench/migrate_0003.py 1000000 2000000
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time

from alembic import command
from sqlalchemy import create_engine

from heliod.adapters.store import Store
from heliod.adapters.store.migrate import alembic_config

T0_US = 1_700_000_000_000_000


def case(n: int) -> tuple[float, float, float]:
    """(size MB, seconds of the upgrade, seconds of a current open) for n readings."""
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/h.db"
        engine = create_engine(f"sqlite:///{path}")
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
        engine.dispose()
        db = sqlite3.connect(path)
        db.executemany(
            "INSERT INTO readings (device, ts_us, energy_mwh, power_mw, received_us)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                (f"inv{i % 20:02d}", T0_US + i * 500_000, i * 37, 1_234_567, T0_US + i * 500_000)
                for i in range(n)
            ),
        )
        db.commit()
        db.close()
        size = os.path.getsize(path) / 1e6
        start = time.perf_counter()
        Store.open(f"sqlite:///{path}").close()
        upgrade = time.perf_counter() - start
        start = time.perf_counter()
        Store.open(f"sqlite:///{path}").close()
        return size, upgrade, time.perf_counter() - start


def main() -> None:
    print("| readings | file | open with 0003 | open, current (baseline) | per million |")
    print("|---:|---:|---:|---:|---:|")
    for n in [int(a) for a in sys.argv[1:]] or [1_000_000]:
        size, upgrade, current = case(n)
        print(
            f"| {n:,} | {size:.0f} MB | {upgrade:.1f} s | {current:.1f} s "
            f"| {upgrade / n * 1e6:.1f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
