"""Raw-data retention (`storage.raw_retention`): old readings go, unless someone still needs them.

A reading may be deleted only when it is older than the cut-off, every consumer that
reads the store in order (the accountant, the exporter when export is configured) has
handled it, and it is not its device's newest reading. Rollups (energy and power buckets),
mints, credits and anomalies are never pruned.

Deletion runs in windows of ids, one short writer transaction each, so the daemon's
ingest never waits long. It walks readings in store order and stops at the first window
whose readings are all within retention: readings are stored roughly in time order, so
what follows is newer still (a backfill of old readings stored later is kept longer, never
deleted early).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select

from heliod.adapters.store import schema as t
from heliod.adapters.store.store import Store, get_position, set_position

RETENTION = "retention"  # position: readings at or below it may have been pruned
CLOCK = "retention-clock"  # position: the time (µs) the last pass pruned as of
WINDOW = 20_000  # ids per delete transaction: a few tens of ms on a gateway's SD card


@dataclass(frozen=True, slots=True)
class PruneResult:
    """How many rows one `prune` deleted, and the id no reading at or below may be kept for."""

    readings: int
    rejected: int
    upto_id: int


def prune(
    store: Store,
    before_us: int,
    consumers: Sequence[str] = ("accountant", "exporter"),
    window: int = WINDOW,
) -> PruneResult:
    """Delete raw readings older than `before_us` that every consumer has handled."""
    with store.read() as conn:
        if consumers:
            upto = min(get_position(conn, c) for c in consumers)
        else:
            upto = int(conn.execute(select(func.max(t.readings.c.id))).scalar() or 0)
        keep = newest_per_device(conn)
        lowest = int(conn.execute(select(func.min(t.readings.c.id))).scalar() or 0)
    r = t.readings.c
    deleted = 0
    lo = max(lowest - 1, 0)
    while lo < upto:
        hi = min(lo + window, upto)
        with store.write() as conn:
            window_rows = r.id > lo, r.id <= hi
            old = conn.execute(
                select(func.count()).where(*window_rows, r.ts_us < before_us)
            ).scalar()
            if not old:
                present = conn.execute(select(func.count()).where(*window_rows)).scalar()
                if present:
                    break  # a stretch within retention: what follows is newer
            else:
                stmt = delete(t.readings).where(*window_rows, r.ts_us < before_us)
                if keep:
                    stmt = stmt.where(r.id.not_in(keep))
                gone = conn.execute(stmt).rowcount or 0
                deleted += gone
                if gone:
                    # `ledger verify` replays only from a checkpoint past this mark.
                    mark = max(get_position(conn, RETENTION), hi)
                    set_position(conn, RETENTION, mark, time.time_ns() // 1000)
        lo = hi
    rejected = _prune_rejected(store, before_us, window)
    return PruneResult(readings=deleted, rejected=rejected, upto_id=upto)


def pass_clock(conn: Connection) -> int | None:
    """The time the last retention pass pruned as of (µs); before any pass, the arrival
    of the newest stored reading; None for an empty store (docs/storage.md, "Retention")."""
    last = get_position(conn, CLOCK)
    if last:
        return last
    r = t.readings.c
    newest = conn.execute(select(func.max(r.id))).scalar()
    if newest is None:
        return None
    arrived = conn.execute(select(r.received_us).where(r.id == newest)).scalar()
    return None if arrived is None else int(arrived)


def record_pass_clock(store: Store, at_us: int) -> None:
    """Remember the time a pass prunes as of."""
    with store.write() as conn:
        set_position(conn, CLOCK, at_us, at_us)


def newest_per_device(conn: Connection) -> list[int]:
    """Id of each device's newest reading by timestamp (one index probe per device)."""
    r = t.readings.c
    ids: list[int] = []
    for (device,) in conn.execute(select(t.devices.c.device)):
        newest = conn.execute(
            select(r.id).where(r.device == device).order_by(r.ts_us.desc(), r.id.desc()).limit(1)
        ).scalar()
        if newest is not None:
            ids.append(int(newest))
    return ids


def _prune_rejected(store: Store, before_us: int, window: int) -> int:
    """Rejected readings are kept for diagnosis as long as raw readings, by arrival time."""
    x = t.rejected_readings.c
    total = 0
    while True:
        with store.write() as conn:
            ids = [
                int(i)
                for (i,) in conn.execute(
                    select(x.id).where(x.received_us < before_us).order_by(x.id).limit(window)
                )
            ]
            if not ids:
                return total
            total += conn.execute(delete(t.rejected_readings).where(x.id.in_(ids))).rowcount or 0
