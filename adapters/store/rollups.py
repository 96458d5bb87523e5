"""Rollups read instead of raw readings: 5-minute buckets of energy and of power.

Energy: the accountant adds every accepted Δ to `energy_buckets` (plant, device, 5-minute
bucket of P's timestamp) in the transaction that accounts it. Power: `add_power` adds
each stored reading's `power_w` to `power_buckets` (device, 5-minute bucket, Σ mW, count)
in the transaction that stores it. Both are exact integers and are never pruned, so the
production route and the dashboard keep working once raw readings are gone.

The accountant also adds each Δ to `energy_hourly` (plant, UTC hour of P's timestamp) in
the same transaction: a plant's total over long ranges reads 12 times fewer rows, and no
per-device rows at all. Hours and days are sums of 5-minute buckets, or of those hours
when every step starts on a whole UTC hour: every timezone in use today is offset from
UTC by a multiple of 15 minutes, so a bucket never straddles a local hour or midnight,
and most zones' hours and midnights are whole UTC hours. The queries here sum over
devices in SQL (one row per bucket) and leave the steps to the caller, which knows the
plant's timezone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy.dialects import sqlite

from heliod.adapters.store import schema as t

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

BUCKET_US = 300_000_000  # 5 minutes, the same grid as the accountant's energy buckets


def conflict_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that takes ON CONFLICT, in the connection's dialect.

    PostgreSQL's dialect package (2 MB with every driver's module) is imported only on
    PostgreSQL: a gateway on SQLite never loads it.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415 - see the docstring

        return postgresql.insert(table)
    return sqlite.insert(table)


def bucket_of(ts_us: int) -> int:
    """Start of the 5-minute bucket holding `ts_us` (floor, also before 1970)."""
    return ts_us - ts_us % BUCKET_US


def add_power(conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
    """Add the power of freshly stored reading rows to their buckets, in the caller's tx.

    A row is (device, ts_us, energy_mwh, power_mw, ...), as the store inserts it.
    """
    sums: dict[tuple[str, int], list[int]] = {}
    for row in rows:
        power = row[3]
        if power is None:
            continue
        ts_us = row[1]
        key = (row[0], ts_us - ts_us % BUCKET_US)
        acc = sums.get(key)
        if acc is None:
            sums[key] = [power, 1]
        else:
            acc[0] += power
            acc[1] += 1
    if not sums:
        return
    table = t.power_buckets
    stmt = conflict_insert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["device", "start_us"],
        set_={
            "sum_mw": table.c.sum_mw + stmt.excluded.sum_mw,
            "n": table.c.n + stmt.excluded.n,
        },
    )
    conn.execute(
        stmt,
        [
            {"device": d, "start_us": s, "sum_mw": v[0], "n": v[1]}
            for (d, s), v in sorted(sums.items())
        ],
    )


def energy_buckets(
    conn: Connection, plant: str, devices: Sequence[str] | None, from_us: int, to_us: int
) -> list[tuple[int, int]]:
    """(bucket start, accepted mWh summed over the devices) for buckets in [from_us, to_us)."""
    e = t.energy_buckets.c
    if devices is None:
        # Naming the devices lets the primary key (plant, device, start_us) serve one
        # range per device instead of every bucket the plant ever had.
        devices = bucket_devices(conn, plant)
    stmt = (
        select(e.start_us, func.sum(e.e_mwh))
        .where(
            e.plant == plant,
            e.device.in_(list(devices)),
            e.start_us >= from_us,
            e.start_us < to_us,
        )
        .group_by(e.start_us)
        .order_by(e.start_us)
    )
    return [(int(s), int(v)) for s, v in conn.execute(stmt)]


def energy_hours(conn: Connection, plant: str, from_us: int, to_us: int) -> list[tuple[int, int]]:
    """(UTC hour start, the plant's accepted mWh) for hours in [from_us, to_us)."""
    h = t.energy_hourly.c
    stmt = (
        select(h.start_us, h.e_mwh)
        .where(h.plant == plant, h.start_us >= from_us, h.start_us < to_us)
        .order_by(h.start_us)
    )
    return [(int(s), int(v)) for s, v in conn.execute(stmt)]


def bucket_devices(conn: Connection, plant: str) -> list[str]:
    """Devices with energy buckets in a plant: one index seek per device (a skip scan)."""
    rows = conn.execute(_SKIP_SCAN, {"plant": plant}).scalars()
    return [str(d) for d in rows if d is not None]


_SKIP_SCAN = text(
    "WITH RECURSIVE d(device) AS ("
    " SELECT MIN(device) FROM energy_buckets WHERE plant = :plant"
    " UNION ALL"
    " SELECT (SELECT MIN(e.device) FROM energy_buckets e"
    " WHERE e.plant = :plant AND e.device > d.device)"
    " FROM d WHERE d.device IS NOT NULL"
    ") SELECT device FROM d"
)


def power_buckets(
    conn: Connection, devices: Sequence[str], from_us: int, to_us: int
) -> Iterator[tuple[int, str, int, int]]:
    """(bucket start, device, Σ mW, readings) of the devices' buckets in [from_us, to_us),
    read as they are used (a day of 20 devices is thousands of rows, every dashboard
    refresh)."""
    p = t.power_buckets.c
    stmt = (
        select(p.start_us, p.device, p.sum_mw, p.n)
        .where(p.device.in_(list(devices)), p.start_us >= from_us, p.start_us < to_us)
        .order_by(p.start_us, p.device)
    )
    for s, d, v, n in conn.execute(stmt):
        yield int(s), str(d), int(v), int(n)


def latest_power(conn: Connection, device: str) -> tuple[int, int] | None:
    """(power in mW, its reading's µs) of the device's newest reading with a power, if any."""
    r = t.readings.c
    row = conn.execute(
        select(r.power_mw, r.ts_us)
        .where(r.device == device, r.power_mw.is_not(None))
        .order_by(r.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row.power_mw), int(row.ts_us))
