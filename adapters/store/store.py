"""The local store: the record of every reading, and the ledger beside it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Table, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from heliod.adapters.store import schema as t
from heliod.adapters.store.engine import (
    StoreError,
    check_integrity,
    make_engine,
    read_tx,
    sqlite_path,
    write_tx,
)
from heliod.adapters.store.migrate import upgrade
from heliod.adapters.store.rollups import add_power, conflict_insert
from heliod.adapters.store.status import Space, WriteHealth, space_of
from heliod.rewards.ingest import check
from heliod.rewards.readings import ENERGY, POWER, Reading
from heliod.rewards.times import to_us
from heliod.rewards.units import MAX_ENERGY_WH, wh_to_mwh

# A range so large that no valid counter can be above 90 % of it can never roll over.
_NO_ROLLOVER_ABOVE_WH = MAX_ENERGY_WH * 2


# One reading as stored: (device, ts_us, energy_mwh, power_mw, extra, range_mwh, received_us).
Row = tuple[str, int, int | None, int | None, str | None, int | None, int]

# One reading as the export renders it: (id, device, ts_us, energy_mwh, power_mw, extra).
ExportRow = tuple[int, str, int, int | None, int | None, str | None]


@dataclass(frozen=True, slots=True)
class ExportLines:
    """Render readings as the export's line protocol when they are stored (schema.export_outbox).

    `render` turns rows into the body of a write (lines joined by newlines, a reading
    without fields skipped); `max_points` is the export's batch size, the most readings
    one outbox row holds.
    """

    render: Callable[[Sequence[ExportRow]], bytes]
    max_points: int


class Rejected(NamedTuple):
    """A reading the gate refused (docs/accounting.md, "Rejected readings")."""

    device: str
    reason: str
    ts_us: int  # the reading's timestamp
    last_ts_us: int | None  # the device's last kept energy timestamp it was compared with


@dataclass(slots=True)
class IngestResult:
    """What one `Store.ingest` committed."""

    stored: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    last_id: int = 0


class Store:
    """SQLite or PostgreSQL behind one API; open it with `Store.open(url)`."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.export_lines: ExportLines | None = None  # set when readings are exported
        self.writes = WriteHealth()  # a failed write until the next good commit (/healthz)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect, refuse a damaged file, and bring the schema up to date."""
        engine = make_engine(url)
        try:
            check_integrity(engine, url)
            if migrate:
                upgrade(engine)
        except StoreError:
            engine.dispose()
            raise
        except Exception as exc:
            engine.dispose()
            raise StoreError(f"cannot open the store at {_redact(url)}: {exc}") from exc
        return cls(engine, url)

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A serialized writer transaction; its outcome is told to `writes`."""
        try:
            with write_tx(self.engine) as conn:
                yield conn
        except DBAPIError as exc:  # the database refused (disk full, locked, gone)
            self.writes.failed(exc)
            raise
        self.writes.committed()

    def space(self) -> Space | None:
        """Free and total bytes where an embedded store lives (None: a server database)."""
        return space_of(sqlite_path(self.url))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot."""
        with read_tx(self.engine) as conn:
            yield conn

    def ingest(self, items: Sequence[Reading], now_us: int) -> IngestResult:
        """Commit a batch of readings in one transaction, rejecting what must be."""
        result = IngestResult()
        if not items:
            return result
        with self.write() as conn:
            return ingest_in(conn, items, now_us, self.export_lines)

    # -- consumer positions (accountant, exporter, publisher, ...) ---------------------

    def position(self, consumer: str) -> int:
        """The last reading id `consumer` has fully handled (0: none)."""
        with self.read() as conn:
            return get_position(conn, consumer)

    def set_position(self, consumer: str, position: int, now_us: int) -> None:
        """Record that `consumer` has handled every reading up to `position`."""
        with self.write() as conn:
            set_position(conn, consumer, position, now_us)


def ingest_in(
    conn: Connection,
    items: Sequence[Reading],
    now_us: int,
    export_lines: ExportLines | None = None,
) -> IngestResult:
    """`Store.ingest` inside an open writer transaction."""
    result = IngestResult()
    names = sorted({r.device for r in items})
    heads = {
        row.device: row
        for row in conn.execute(select(t.devices).where(t.devices.c.device.in_(names)))
    }
    last_energy = {d: heads[d].last_energy_ts_us if d in heads else None for d in names}
    counts: dict[str, list[int]] = {d: [0, 0, 0] for d in names}  # kept, rejected, last ts
    rows: list[Row] = []
    bad: list[dict[str, object]] = []
    for r in items:
        ts_us = to_us(r.ts)
        fields = dict(r.fields)
        verdict = check(ts_us, fields, last_energy[r.device], now_us)
        if verdict.rejection is not None:
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
            (
                r.device,
                ts_us,
                None if energy is None else wh_to_mwh(energy),
                None if power is None else wh_to_mwh(power),
                _extra(fields) if fields else None,
                None
                if rng is None or not rng.is_finite() or rng > _NO_ROLLOVER_ABOVE_WH
                else wh_to_mwh(rng),
                now_us,
            )
        )
        count = counts[r.device]
        count[0] += 1
        count[2] = max(count[2], ts_us)
    if rows and export_lines is not None:
        _insert_with_outbox(conn, rows, export_lines)
        add_power(conn, rows)
        result.stored = len(rows)
    elif rows:
        _insert_readings(conn, rows)
        add_power(conn, rows)  # 5-minute power rollups, same transaction
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


def _insert_with_outbox(conn: Connection, rows: list[Row], export_lines: ExportLines) -> None:
    """Insert readings and their export lines, one outbox row per `max_points` readings.

    The writer lock is held, so the ids a group receives are exactly those after the
    newest id before it and up to the newest id after it, whatever their gaps.
    """
    newest = select(func.max(t.readings.c.id))
    after = int(conn.execute(newest).scalar() or 0)
    step = max(1, export_lines.max_points)
    for start in range(0, len(rows), step):
        group = rows[start : start + step]
        _insert_readings(conn, group)
        last = int(conn.execute(newest).scalar() or 0)
        body = export_lines.render([(0, *r[:5]) for r in group])
        conn.execute(
            insert(t.export_outbox).values(
                last_id=last,
                after_id=after,
                readings=len(group),
                points=body.count(b"\n") + 1 if body else 0,
                body=body or None,
            )
        )
        after = last


# Reading columns in the order of `Row`, and the INSERT that takes them as one tuple each.
_ROW_COLUMNS = (
    "device",
    "ts_us",
    "energy_mwh",
    "power_mw",
    "extra",
    "range_mwh",
    "received_us",
)
_SQLITE_INSERT = (
    "INSERT INTO readings (device, ts_us, energy_mwh, power_mw, extra, range_mwh, received_us)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _insert_readings(conn: Connection, rows: list[Row]) -> None:
    """INSERT the rows: on SQLite one prepared statement run by the driver for all of them
    (SQLAlchemy's per-row parameter handling cost more than SQLite's own insert), elsewhere
    SQLAlchemy's multi-row insert."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_INSERT, rows)
    else:
        conn.execute(insert(t.readings), [dict(zip(_ROW_COLUMNS, r, strict=True)) for r in rows])


# A field name as a JSON string, worked out once per name (names come from configuration;
# the bound only matters for an import of a file with ever new column names).
_JSON_KEYS: dict[str, str] = {}
_JSON_KEYS_MAX = 1024


def _extra(fields: dict[str, Decimal]) -> str:
    """{name: "decimal text"} as compact JSON with sorted keys: what json.dumps gives, in a
    tenth of the time (a Decimal's text never needs escaping)."""
    parts = []
    for name in sorted(fields):
        key = _JSON_KEYS.get(name)
        if key is None:
            key = json.dumps(name)
            if len(_JSON_KEYS) < _JSON_KEYS_MAX:
                _JSON_KEYS[name] = key
        parts.append(f'{key}:"{fields[name]!s}"')
    return "{" + ",".join(parts) + "}"


def get_position(conn: Connection, consumer: str) -> int:
    """Position of a consumer inside an open transaction."""
    value = conn.execute(
        select(t.positions.c.position).where(t.positions.c.consumer == consumer)
    ).scalar()
    return int(value or 0)


def set_position(conn: Connection, consumer: str, position: int, now_us: int) -> None:
    """Upsert a consumer's position inside an open writer transaction."""
    upsert(
        conn,
        t.positions,
        [{"consumer": consumer, "position": position, "updated_us": now_us}],
        keys=["consumer"],
        replace=["position", "updated_us"],
    )


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, object]],
    *,
    keys: Sequence[str],
    replace: Sequence[str] = (),
    add: Sequence[str] = (),
) -> None:
    """INSERT … ON CONFLICT DO UPDATE: `replace` columns take the new value, `add` ones sum."""
    if not rows:
        return
    stmt = conflict_insert(conn, table)
    changes: dict[str, ColumnElement[Any]] = {c: stmt.excluded[c] for c in replace}
    changes.update({c: table.c[c] + stmt.excluded[c] for c in add})
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes), rows)


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
