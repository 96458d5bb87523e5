"""Store.ingest against the ingest it replaced: the same batch gives identical rows.

The oracle below is the previous ingest (store.py's ingest_in and _extra, rollups.py's
add_power, before readings went to the SQLite driver as tuples), kept here only as the
reference. Readings, extra JSON, rejected readings, device counters and 5-minute power
rollups must be identical, and so must what ingest returns.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.rollups import bucket_of
from heliod.adapters.store.store import IngestResult, Rejected, ingest_in
from heliod.rewards.ingest import check
from heliod.rewards.readings import ENERGY, POWER, Reading
from heliod.rewards.times import to_us
from heliod.rewards.units import MAX_ENERGY_WH, wh_to_mwh

_NO_ROLLOVER_ABOVE_WH = MAX_ENERGY_WH * 2


# -- the oracle: the previous ingest --------------------------------------------------
def _o_extra(fields: dict[str, Decimal]) -> str | None:
    if not fields:
        return None
    return json.dumps({k: str(v) for k, v in sorted(fields.items())}, separators=(",", ":"))


def _o_add_power(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    sums: dict[tuple[str, int], list[int]] = {}
    for row in rows:
        power = row.get("power_mw")
        if power is None:
            continue
        key = (str(row["device"]), bucket_of(int(row["ts_us"])))
        acc = sums.get(key)
        if acc is None:
            sums[key] = [int(power), 1]
        else:
            acc[0] += int(power)
            acc[1] += 1
    if not sums:
        return
    table = t.power_buckets
    stmt = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["device", "start_us"],
        set_={"sum_mw": table.c.sum_mw + stmt.excluded.sum_mw, "n": table.c.n + stmt.excluded.n},
    )
    conn.execute(
        stmt,
        [
            {"device": d, "start_us": s, "sum_mw": v[0], "n": v[1]}
            for (d, s), v in sorted(sums.items())
        ],
    )


def _o_ingest_in(conn: Connection, items: Sequence[Reading], now_us: int) -> IngestResult:
    result = IngestResult()
    names = sorted({r.device for r in items})
    heads = {
        row.device: row
        for row in conn.execute(select(t.devices).where(t.devices.c.device.in_(names)))
    }
    last_energy = {d: heads[d].last_energy_ts_us if d in heads else None for d in names}
    counts: dict[str, list[int]] = {d: [0, 0, 0] for d in names}
    rows: list[dict[str, object]] = []
    bad: list[dict[str, object]] = []
    for r in items:
        ts_us = to_us(r.ts)
        fields = dict(r.fields)
        verdict = check(ts_us, fields, last_energy[r.device], now_us)
        if not verdict.kept:
            value = fields.get(verdict.field) if verdict.field else None
            bad.append(
                {
                    "device": r.device,
                    "ts_us": ts_us,
                    "received_us": now_us,
                    "reason": str(verdict.rejection),
                    "field": verdict.field,
                    "value": None if value is None else str(value),
                }
            )
            counts[r.device][1] += 1
            result.rejected.append(
                Rejected(r.device, str(verdict.rejection), ts_us, last_energy[r.device])
            )
            continue
        energy = fields.pop(ENERGY, None)
        power = fields.pop(POWER, None)
        if energy is not None:
            last_energy[r.device] = ts_us
        rng = r.counter_range_wh
        rows.append(
            {
                "device": r.device,
                "ts_us": ts_us,
                "energy_mwh": None if energy is None else wh_to_mwh(energy),
                "power_mw": None if power is None else wh_to_mwh(power),
                "extra": _o_extra(fields),
                "range_mwh": None
                if rng is None or not rng.is_finite() or rng > _NO_ROLLOVER_ABOVE_WH
                else wh_to_mwh(rng),
                "received_us": now_us,
            }
        )
        counts[r.device][0] += 1
        counts[r.device][2] = max(counts[r.device][2], ts_us)
    if rows:
        conn.execute(insert(t.readings), rows)
        _o_add_power(conn, rows)
        result.stored = len(rows)
    if bad:
        conn.execute(insert(t.rejected_readings), bad)
    last_id = conn.execute(select(func.max(t.readings.c.id))).scalar() or 0
    result.last_id = int(last_id)
    for device in names:
        kept, rejected, last_ts = counts[device]
        head = heads.get(device)
        values = {
            "last_energy_ts_us": last_energy[device],
            "readings": (head.readings if head else 0) + kept,
            "rejected": (head.rejected if head else 0) + rejected,
        }
        if kept:
            values["last_ts_us"] = max(last_ts, (head.last_ts_us or 0) if head else 0)
        if head is None:
            conn.execute(insert(t.devices).values(device=device, **values))
        else:
            conn.execute(update(t.devices).where(t.devices.c.device == device).values(**values))
    return result


# -- batches --------------------------------------------------------------------------
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

values = st.one_of(
    st.decimals(places=3, min_value=-(10**16), max_value=10**16),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            Decimal("-0"),
            Decimal("-0.000"),
            Decimal("0.0005"),
            Decimal("1E+15"),
            Decimal("1000000000000000.001"),
            Decimal("-1E+15"),
            Decimal("1E-30"),
            Decimal("NaN"),
            Decimal("-Infinity"),
            Decimal("1.5E+3"),
        ]
    ),
)
names = st.sampled_from([ENERGY, POWER, "voltage_v", "a\u00e9", 'q"', "temp_c", "\u2603"])
readings = st.builds(
    Reading,
    device=st.sampled_from(["inv-1", "inv-2", "m\u00e8tre"]),
    # before, at and after NOW (the clock bound), repeats (not after the last reading)
    # within about seventeen minutes, so that readings share 5-minute power buckets
    ts=st.integers(-120, 80).map(lambda s: NOW + timedelta(seconds=s * 5)),
    fields=st.dictionaries(names, values, max_size=5),
    counter_range_wh=st.one_of(
        st.none(), st.sampled_from([Decimal(2**32), Decimal("2E+15"), Decimal("NaN")]), values
    ),
)
batches = st.lists(st.lists(readings, max_size=25), min_size=1, max_size=3)


def _tables(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with store.read() as conn:
        for table in (t.readings, t.rejected_readings, t.devices, t.power_buckets):
            key = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*key))]
    return out


def _both(new: Store, old: Store, batch_list: list[list[Reading]]) -> None:
    for n, batch in enumerate(batch_list):
        now_us = to_us(NOW) + n
        if not batch:
            continue
        with new.write() as conn:
            got = ingest_in(conn, batch, now_us)
        with old.write() as conn:
            want = _o_ingest_in(conn, batch, now_us)
        assert got == want
    assert _tables(new) == _tables(old)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches)
def test_sqlite_rows_are_those_of_the_previous_ingest(batch_list: list[list[Reading]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        new = Store.open(f"sqlite:///{d}/new.db")
        old = Store.open(f"sqlite:///{d}/old.db")
        try:
            _both(new, old, batch_list)
        finally:
            new.close()
            old.close()


def test_postgresql_rows_are_those_of_the_previous_ingest(pg_url: str, tmp_path: Any) -> None:
    """The new ingest on PostgreSQL (SQLAlchemy's insert) and the previous one on SQLite."""
    start = NOW - timedelta(hours=1)
    batch = [
        Reading(
            f"inv-{i % 3}",
            start + timedelta(seconds=17 * (i % 50)),  # repeats: not after the last reading
            {
                ENERGY: Decimal(i * 1000) + Decimal("0.0005") * (i % 4),
                POWER: Decimal(i) - Decimal("0.0015"),
                "voltage_v": Decimal(230) + Decimal(i) / 7,
                'q"\u00e9': Decimal("-0"),
            },
            Decimal(2**32) if i % 5 else None,
        )
        for i in range(120)
    ]
    batch.append(Reading("inv-0", NOW + timedelta(hours=1), {ENERGY: Decimal(1)}))  # future
    batch.append(Reading("inv-1", NOW, {POWER: Decimal("NaN")}))  # not finite
    batch.append(Reading("inv-2", NOW, {ENERGY: Decimal(-1)}))  # negative
    new = Store.open(pg_url)
    old = Store.open(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        _both(new, old, [batch, batch[:40]])
    finally:
        new.close()
        old.close()
