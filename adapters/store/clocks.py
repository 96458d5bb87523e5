"""Clock reset decisions (docs/accounting.md, "Clocks"), inside a transaction the caller holds."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, func, insert, select, update

from heliod.adapters.store import schema as t
from heliod.rewards.clocks import ClockReset, Seen
from heliod.rewards.ingest import Rejection
from heliod.rewards.units import wh_to_mwh


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """What a clock reset of one device would record, and what the operator is shown."""

    device: str
    newest_ts_us: int | None  # its newest stored reading (the one ahead of the clock)
    position: int  # id of its last stored reading (0: none)
    rejected: int  # readings rejected so far (stored count)
    seen: Seen | None  # its newest reading rejected as not after the last one


def device_clock(conn: Connection, device: str) -> DeviceClock:
    """The device's newest stored reading, its position and its newest rejected reading."""
    d, r = t.devices.c, t.readings.c
    head = conn.execute(select(d.last_ts_us, d.rejected).where(d.device == device)).first()
    position = conn.execute(select(func.max(r.id)).where(r.device == device)).scalar()
    return DeviceClock(
        device,
        None if head is None or head[0] is None else int(head[0]),
        int(position or 0),
        0 if head is None else int(head[1]),
        newest_rejected(conn, device),
    )


def newest_rejected(conn: Connection, device: str) -> Seen | None:
    """The counter value and time of the device's newest reading rejected as not after the
    last, in the episode a reset of it now covers.

    Only that reason: its value passed every other check, so it is a counter the device
    really reported (docs/accounting.md, "Rejected readings"). Only rows rejected after
    the device's previous clock reset: a reading of an earlier episode is never credited
    in this one (docs/accounting.md, "Clocks").
    """
    x, c = t.rejected_readings.c, t.clock_resets.c
    after = conn.execute(select(func.max(c.rejected_upto)).where(c.device == device)).scalar()
    row = conn.execute(
        select(x.ts_us, x.value)
        .where(
            x.device == device,
            x.id > int(after or 0),
            x.reason == str(Rejection.NOT_AFTER_LAST),
            x.field == "energy_wh",
            x.value.is_not(None),
            x.ts_us.is_not(None),
        )
        .order_by(x.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    try:
        value = Decimal(row[1])
    except InvalidOperation:
        return None
    return Seen(wh_to_mwh(value), int(row[0])) if value.is_finite() else None


def record_clock_reset(conn: Connection, shown: DeviceClock, now_us: int) -> ClockReset:
    """Store the decision the operator was shown; from now on the gate compares the
    device's readings with later ones.

    The decision records the newest rejected reading V of `shown`, the one the operator
    confirmed, even when another was rejected since (docs/accounting.md, "Clocks").
    """
    device = shown.device
    clock = device_clock(conn, device)
    seen = shown.seen
    upto = conn.execute(select(func.max(t.rejected_readings.c.id))).scalar()
    result = conn.execute(
        insert(t.clock_resets).values(
            device=device,
            position=clock.position,
            decided_us=now_us,
            seen_mwh=None if seen is None else seen.value_mwh,
            seen_at_us=None if seen is None else seen.at_us,
            rejected_upto=int(upto or 0),
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row always has one
    new_id = key[0]
    # The gate (store.ingest_in) compares with `last_energy_ts_us`; `last_ts_us` is the
    # newest reading /healthz judges the clock by. Both start again from the next reading.
    conn.execute(
        update(t.devices)
        .where(t.devices.c.device == device)
        .values(last_energy_ts_us=None, last_ts_us=None)
    )
    return ClockReset(int(new_id), device, clock.position, now_us, seen)


def clock_resets_after(conn: Connection, after_id: int) -> list[ClockReset]:
    """Clock reset decisions recorded after id `after_id`, in order."""
    c = t.clock_resets.c
    rows = conn.execute(
        select(c.id, c.device, c.position, c.decided_us, c.seen_mwh, c.seen_at_us)
        .where(c.id > after_id)
        .order_by(c.id)
    )
    return [
        ClockReset(
            int(i),
            device,
            int(position),
            int(decided),
            None if value is None or at is None else Seen(int(value), int(at)),
        )
        for i, device, position, decided, value, at in rows
    ]
