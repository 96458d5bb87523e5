"""Digests of everything a run of the accountant stores, to compare two versions of it.

  PYTHONPATH=<tree of version A> python bench/credit_digest.py [--backers 20000] [--units 100000000] [--batch 1]
  PYTHONPATH=<tree of version B> python bench/credit_digest.py …   # the same lines: the same bytes

A store of N backers (bench/ledger.py's register), five MWh of readings and register rows
that change between mints (late rows for every seventh backer, 0 or a tiny weight, and 50
new backers whose weight rounds to 0 units), accounted with the verifiable log under a
fixed key; then one SHA-256 per table of its rows in key order: the mints with their push
bodies, the credits and their ids, the balances, the log's leaves, tiles and signed
checkpoints, the accountant's state (docs/performance.md, "Crediting a million backers").
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from heliod.adapters.signing import SigningKey
from heliod.adapters.store import Store
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.jobs.ledger_log import LogSigner

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from ledger import MINUTE_US, T0_US, _book, setup_credit

from tests.daemon.jobs.test_crediting import ORDER, TABLES  # the tables the accountant writes


def _fill(path: str, backers: int) -> None:
    setup_credit(path, backers)
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO readings (device, ts_us, energy_mwh, received_us) VALUES ('inv', ?, ?, 0)",
        [(T0_US + (5 + i) * MINUTE_US, 3_000_000_005 + i * 1_000_000_001) for i in range(4)],
    )
    late = T0_US + 3 * MINUTE_US
    conn.executemany(
        "INSERT INTO shares (plant, backer, weight, valid_from_us, stored_us) "
        "VALUES ('p', ?, ?, ?, 0)",
        [(f"b{i:07d}", "0.000001" if i % 3 else "0", late) for i in range(0, backers, 7)]
        + [(f"new{i:05d}", "0.0000001", late) for i in range(50)],
    )
    conn.commit()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backers", type=int, default=20_000)
    parser.add_argument("--units", type=int, default=10**8, help="units per MWh")
    parser.add_argument("--batch", type=int, default=1, help="readings per batch")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/h.db"
        _fill(path, a.backers)
        store = Store.open(f"sqlite:///{path}")
        key = SigningKey(bytes(range(32)))
        book = replace(_book(["inv"], 100_000), units_per_mwh=a.units)
        log = LogSigner("bench.example/heliod", key)
        Accountant(store, [book], lambda: T0_US, batch_size=a.batch, log=log).run()
        store.close()
        conn = sqlite3.connect(path)
        for table, columns in TABLES.items():
            digest = hashlib.sha256()
            count = 0
            query = f"SELECT {columns} FROM {table} ORDER BY {ORDER[table]}"
            for row in conn.execute(query):
                digest.update(repr(row).encode())
                count += 1
            print(f"{table}: {count} rows, sha256 {digest.hexdigest()}")
        conn.close()


if __name__ == "__main__":
    main()
