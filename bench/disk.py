"""Disk: what the SQLite store grows by, per reading and per backer per MWh (docs/storage.md).

    .venv/bin/python bench/disk.py [--days 7] [--devices 10] [--backers 1000 10000] [--mints 10]

Readings: `--days` of one-minute readings of `--devices` inverters, stored in batches
of one poll of every device (as the pollers flush) and accounted (their 5-minute and
hourly energy rollups), 1 backer. Credits: `--mints` MWh minted and credited to N backers
through the accountant (credit rows, the mint row with its push body and ledger state,
balances). Sizes come from SQLite's page accounting (the `dbstat` table: pages used by
each table and index, free space inside them included), before and after, so each delta
is what that table took on the disk; the file size after a checkpoint is printed as the
total. Baseline of the same run: the empty store.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.daemon.jobs.accountant import Accountant
from heliod.rewards.energy import Bound
from heliod.rewards.ledger import PlantBook, PlantRules
from heliod.rewards.readings import ENERGY, POWER, Reading
from heliod.rewards.register import BEGINNING_US

T0_US = 1_483_228_800_000_000  # 2017-01-01T00:00:00Z
MINUTE_US = 60_000_000


def pages(store: Store) -> dict[str, int]:
    """Bytes of every table and index (dbstat), after a WAL checkpoint."""
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.exec_driver_sql("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").all()
    return {str(name): int(size) for name, size in rows}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Growth per table or index, the ones that grew."""
    out = {n: after[n] - before.get(n, 0) for n in after}
    return {n: d for n, d in sorted(out.items(), key=lambda x: -x[1]) if d}


def _shares(store: Store, backers: int) -> None:
    with store.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO shares (plant, backer, weight, valid_from_us, stored_us) "
            "VALUES ('p', ?, ?, ?, 0)",
            [(f"b{i:07d}", f"{100 + i % 900}.{i % 100:02d}", BEGINNING_US) for i in range(backers)],
        )


def _readings(devices: int, minutes: int) -> Iterator[list[Reading]]:
    """One batch per minute: every device's counter and power, a sine day curve, 250 kW each."""
    energy = [Decimal(0)] * devices
    for m in range(minutes):
        hour = (m % 1440) / 60
        power_w = max(0.0, 240_000 * math.sin(math.pi * (hour - 6) / 12)) if 6 < hour < 18 else 0
        step = Decimal(int(power_w / 60 * 1000)) / 1000
        at = datetime.fromtimestamp((T0_US + m * MINUTE_US) / 1e6, UTC)
        batch = []
        for d in range(devices):
            energy[d] += step
            fields = {ENERGY: energy[d], POWER: Decimal(int(power_w))}
            batch.append(Reading(f"inv{d:02d}", at, fields))
        yield batch


def case_readings(tmp: str, days: int, devices: int) -> None:
    """Bytes per stored and accounted reading."""
    store = Store.open(f"sqlite:///{tmp}/readings.db")
    _shares(store, 1)
    empty = pages(store)
    minutes = days * 1440
    names = frozenset(f"inv{d:02d}" for d in range(devices))
    rules = PlantRules("p", Bound.of(Decimal(250 * devices), Decimal("1.2")), names, None)
    for m, batch in enumerate(_readings(devices, minutes)):
        store.ingest(batch, T0_US + m * MINUTE_US)
    stored = pages(store)
    Accountant(store, [PlantBook(rules, 10**8, "SLR", 8)], lambda: T0_US).run()
    accounted = pages(store)
    n = minutes * devices
    print(f"\n### {n:,} readings ({days} days × {devices} devices × 1/min), 1 backer\n")
    print("| table or index | bytes | bytes per reading |")
    print("|---|---:|---:|")
    for name, d in delta(empty, accounted).items():
        print(f"| {name} | {d:,} | {d / n:.1f} |")
    total = sum(delta(empty, accounted).values())
    raw = sum(delta(empty, stored).values())
    print(f"| **all** | {total:,} | {total / n:.1f} |")
    print(f"\nStored only (before accounting): {raw / n:.1f} bytes per reading.")
    print(f"File: {Path(f'{tmp}/readings.db').stat().st_size:,} bytes.")
    store.close()


def case_credits(tmp: str, backers: int, mints: int) -> None:
    """Bytes per backer per MWh: credit rows, the mint row and its push body, balances."""
    path = f"{tmp}/credits-{backers}.db"
    store = Store.open(f"sqlite:///{path}")
    _shares(store, backers)
    values = [0, 1] + [1 + k * 1_000_000_001 for k in range(1, mints + 2)]
    with store.write() as conn:
        conn.execute(
            insert(t.readings),
            [
                {"device": "inv", "ts_us": T0_US + i * MINUTE_US, "energy_mwh": e, "received_us": 0}
                for i, e in enumerate(values)
            ],
        )
    registered = pages(store)
    rules = PlantRules("p", Bound.of(Decimal(10**9), Decimal("1.2")), frozenset({"inv"}), None)
    acc = Accountant(store, [PlantBook(rules, 10**8, "SLR", 8)], lambda: T0_US, batch_size=1)
    while not acc.batch().mints:  # the first mint: every backer's balances row, once
        pass
    first = pages(store)
    acc.run()
    after = pages(store)
    with store.read() as conn:
        minted = conn.exec_driver_sql("SELECT COUNT(*) FROM mints").scalar() or 0
    n = (int(minted) - 1) * backers
    print(f"\n### {backers:,} backers, {int(minted) - 1} MWh after the first (U = 10^8)\n")
    print("| table or index | bytes | bytes per backer per MWh |")
    print("|---|---:|---:|")
    grown = delta(first, after)
    for name, d in grown.items():
        print(f"| {name} | {d:,} | {d / n:.1f} |")
    total = sum(grown.values())
    print(f"| **all** | {total:,} | {total / n:.1f} |")
    once = delta(registered, first)
    print(
        f"\nOnce per backer (register row already stored; the first mint, balances row "
        f"included): {sum(once.values()) / backers:.1f} bytes "
        f"({', '.join(f'{k} {v / backers:.1f}' for k, v in once.items())})."
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--backers", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--mints", type=int, default=10)
    parser.add_argument("--days-only", action="store_true", help="readings only")
    parser.add_argument("--credits-only", action="store_true", help="credits only")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/empty.db")
        size = Path(f"{tmp}/empty.db").stat().st_size
        print(f"Baseline: the empty store, {sum(pages(store).values()):,} bytes ({size:,} file).")
        store.close()
        if not a.credits_only:
            case_readings(tmp, a.days, a.devices)
        for b in [] if a.days_only else a.backers:
            case_credits(tmp, b, a.mints)


if __name__ == "__main__":
    main()
