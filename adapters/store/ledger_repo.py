"""Reading and writing the ledger's rows inside a transaction the caller holds."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

from sqlalchemy import Connection, func, insert, select, update

from heliod.adapters.store import schema as t
from heliod.adapters.store.store import upsert
from heliod.rewards.energy import Anomaly
from heliod.rewards.ledger import Decision, LedgerState
from heliod.rewards.register import ShareRow
from heliod.rewards.verify import MintRecord

ReadingRow = tuple[int, str, int, int | None, int | None]
BUCKET_US = 300_000_000  # energy is kept per 5-minute bucket of P's timestamp
HOUR_US = 3_600_000_000  # and per plant and UTC hour (energy_hourly)


def load_state(conn: Connection) -> LedgerState:
    """The accountant's persisted state, or a fresh one."""
    text = conn.execute(select(t.accountant.c.state).where(t.accountant.c.id == 1)).scalar()
    return LedgerState() if text is None else LedgerState.from_json(text)


def save_state(conn: Connection, state: LedgerState, now_us: int) -> None:
    """Persist the accountant's state (and its position) in the caller's transaction."""
    upsert(
        conn,
        t.accountant,
        [{"id": 1, "state": state.to_json(), "updated_us": now_us}],
        keys=["id"],
        replace=["state", "updated_us"],
    )
    upsert(
        conn,
        t.positions,
        [{"consumer": "accountant", "position": state.position, "updated_us": now_us}],
        keys=["consumer"],
        replace=["position", "updated_us"],
    )


def energy_readings(
    conn: Connection, after: int, devices: Sequence[str], limit: int | None
) -> tuple[list[ReadingRow], bool, int]:
    """Energy readings of `devices` among the next `limit` readings after id `after`.

    Returns them, whether the scan reached the newest reading, and the id of the last
    reading scanned: the scan walks the primary key
    (the cheapest order there is) and filters here, so the accountant's position can move
    past readings of other devices too.
    """
    r = t.readings.c
    stmt = (
        select(r.id, r.device, r.ts_us, r.energy_mwh, r.range_mwh)
        .where(r.id > after)
        .order_by(r.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    wanted = set(devices)
    rows = conn.execute(stmt).all()
    last = rows[-1][0] if rows else after
    return (
        [
            (row[0], row[1], row[2], row[3], row[4])
            for row in rows
            if row[3] is not None and row[1] in wanted
        ],
        (limit is not None and len(rows) < limit) or limit is None,
        last,
    )


def stream_energy_readings(
    conn: Connection, devices: Sequence[str], upto: int, chunk: int = 20_000, after: int = 0
) -> Iterator[ReadingRow]:
    """Energy readings after id `after` up to id `upto`, in chunks (memory flat in the count)."""
    while after < upto:
        rows, done, last = energy_readings(conn, after, devices, chunk)
        for row in rows:
            if row[0] > upto:
                return
            yield row
        if done:
            return
        after = last


def max_reading_id(conn: Connection) -> int:
    """Id of the newest stored reading (0: none)."""
    return int(conn.execute(select(func.max(t.readings.c.id))).scalar() or 0)


def decisions_after(conn: Connection, after_id: int) -> list[Decision]:
    """Anomaly decisions recorded after decision id `after_id`, in order."""
    d, a = t.decisions.c, t.anomalies.c
    stmt = (
        select(
            d.id,
            a.plant,
            a.device,
            a.reading_id,
            d.accept,
            a.delta_mwh,
            d.decided_us,
            d.position,
            a.reading_at_us,
        )
        .join(t.anomalies, t.anomalies.c.id == d.anomaly_id)
        .where(d.id > after_id)
        .order_by(d.id)
    )
    return [
        Decision(
            row[0], row[1], row[2], row[3], bool(row[4]), int(row[5] or 0), row[6], row[7], row[8]
        )
        for row in conn.execute(stmt)
    ]


def insert_anomalies(conn: Connection, items: Iterable[tuple[str, Anomaly]], now_us: int) -> None:
    """Record anomalies (plant, anomaly); quarantined jumps wait for a decision."""
    rows = [
        {
            "plant": plant,
            "device": a.device,
            "kind": str(a.kind),
            "status": "quarantined" if a.kind == "implausible_jump" else "recorded",
            "reading_id": a.reading_id,
            "reading_at_us": a.reading_at_us,
            "value_mwh": a.value_mwh,
            "previous_mwh": a.previous_mwh,
            "delta_mwh": a.delta_mwh,
            "credited_mwh": a.credited_mwh,
            "created_us": now_us,
        }
        for plant, a in items
    ]
    if rows:
        conn.execute(insert(t.anomalies), rows)


def add_energy(conn: Connection, buckets: dict[tuple[str, str, int], int]) -> None:
    """Add accepted energy to the 5-minute buckets (plant, device, start)."""
    upsert(
        conn,
        t.energy_buckets,
        [
            {"plant": p, "device": d, "start_us": s, "e_mwh": e}
            for (p, d, s), e in sorted(buckets.items())
            if e
        ],
        keys=["plant", "device", "start_us"],
        add=["e_mwh"],
    )


def add_energy_hourly(conn: Connection, hours: dict[tuple[str, int], int]) -> None:
    """Add accepted energy to the plant-hour sums (plant, UTC hour start)."""
    upsert(
        conn,
        t.energy_hourly,
        [{"plant": p, "start_us": s, "e_mwh": e} for (p, s), e in sorted(hours.items()) if e],
        keys=["plant", "start_us"],
        add=["e_mwh"],
    )


def insert_mint(
    conn: Connection, record: MintRecord, *, event: str, state_before: str, now_us: int
) -> None:
    """A mint's row with its push body (its credits: `credits_repo.insert_credits`)."""
    # The values as parameters, not in the statement: SQLAlchemy's compiled cache keeps
    # the first statement of each shape, and with it a push body of tens of MB.
    conn.execute(
        insert(t.mints),
        {
            "plant": record.plant,
            "mwh_index": record.mwh_index,
            "completed_at_us": record.completed_at_us,
            "units": record.units,
            "register_pos": record.register_pos,
            "undistributed_after": record.undistributed_after,
            "committed_us": now_us,
            "event": event,
            "state_before": state_before,
        },
    )


def share_rows_stream(
    conn: Connection, plant: str, after_id: int = 0
) -> Iterator[tuple[int, str, Decimal, int]]:
    """Register rows of a plant stored after row id `after_id`, in store order, as tuples
    (id, backer, weight, valid_from_us): no object per row kept."""
    s = t.shares.c
    stmt = (
        select(s.id, s.backer, s.weight, s.valid_from_us)
        .where(s.plant == plant, s.id > after_id)
        .order_by(s.id)
    )
    for row in conn.execute(stmt):
        yield int(row[0]), row[1], Decimal(row[2]), int(row[3])


def balances_stream(conn: Connection, plant: str) -> Iterator[tuple[str, int]]:
    """The balances table of a plant, row by row (0 included)."""
    b = t.balances.c
    for backer, units in conn.execute(select(b.backer, b.units).where(b.plant == plant)):
        yield backer, int(units)


def share_rows(conn: Connection, plant: str, after_id: int = 0) -> list[ShareRow]:
    """Register rows of a plant stored after row id `after_id`, in store order."""
    s = t.shares.c
    stmt = (
        select(s.id, s.backer, s.weight, s.valid_from_us)
        .where(s.plant == plant, s.id > after_id)
        .order_by(s.id)
    )
    return [ShareRow(row[0], row[1], Decimal(row[2]), row[3]) for row in conn.execute(stmt)]


def share_times(conn: Connection, plant: str) -> list[tuple[int, int]]:
    """(row id, stored µs) of every register row of a plant, in store order."""
    s = t.shares.c
    stmt = select(s.id, s.stored_us).where(s.plant == plant).order_by(s.id)
    return [(int(i), int(at)) for i, at in conn.execute(stmt)]


def mint_events(conn: Connection, plant: str) -> dict[int, str]:
    """The push body stored with each mint of a plant, by MWh number."""
    m = t.mints.c
    stmt = select(m.mwh_index, m.event).where(m.plant == plant)
    return {int(k): str(event) for k, event in conn.execute(stmt)}


def mint_records(conn: Connection, plant: str, after: int = 0) -> list[MintRecord]:
    """Stored mints of a plant with an MWh number above `after`, in order."""
    m = t.mints.c
    stmt = (
        select(
            m.plant,
            m.mwh_index,
            m.completed_at_us,
            m.units,
            m.register_pos,
            m.undistributed_after,
            m.committed_us,
        )
        .where(m.plant == plant, m.mwh_index > after)
        .order_by(m.mwh_index)
    )
    return [MintRecord(*row) for row in conn.execute(stmt)]


def last_mint_record(conn: Connection, plant: str) -> MintRecord | None:
    """The plant's newest stored mint (None before the first)."""
    m = t.mints.c
    row = conn.execute(
        select(
            m.plant, m.mwh_index, m.completed_at_us, m.units, m.register_pos, m.undistributed_after
        )
        .where(m.plant == plant)
        .order_by(m.mwh_index.desc())
        .limit(1)
    ).first()
    return None if row is None else MintRecord(*row)


def credits_by_mint(conn: Connection, plant: str) -> dict[int, dict[str, int]]:
    """Stored credits of a plant grouped by MWh number."""
    c = t.credits.c
    out: dict[int, dict[str, int]] = {}
    for k, backer, units in conn.execute(
        select(c.mwh_index, c.backer, c.units).where(c.plant == plant).order_by(c.id)
    ):
        per = out.setdefault(int(k), {})
        per[backer] = per.get(backer, 0) + int(units)
    return out


def balances_of(conn: Connection, plant: str) -> dict[str, int]:
    """The balances table of a plant: a row per backer in force at some mint, 0 included."""
    b = t.balances.c
    return {
        backer: int(units)
        for backer, units in conn.execute(select(b.backer, b.units).where(b.plant == plant))
    }


def undistributed_of(conn: Connection, plant: str) -> int:
    """The plant's undistributed balance, as recorded by its latest mint (0 before any)."""
    m = t.mints.c
    last = conn.execute(
        select(m.undistributed_after).where(m.plant == plant).order_by(m.mwh_index.desc()).limit(1)
    ).scalar()
    return int(last or 0)


def decide(conn: Connection, anomaly_id: int, accept: bool, now_us: int) -> None:
    """Record an operator's decision at the current end of the readings."""
    position = int(conn.execute(select(func.max(t.readings.c.id))).scalar() or 0)
    conn.execute(
        insert(t.decisions).values(
            anomaly_id=anomaly_id, accept=accept, decided_us=now_us, position=position
        )
    )
    a = t.anomalies.c
    row = conn.execute(select(a.delta_mwh).where(a.id == anomaly_id)).one()
    conn.execute(
        update(t.anomalies)
        .where(a.id == anomaly_id)
        .values(
            status="accepted" if accept else "rejected",
            decided_us=now_us,
            credited_mwh=int(row[0] or 0) if accept else 0,
        )
    )
