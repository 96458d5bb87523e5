"""Batches of line protocol read from the store in id order, one window of rows at a time.

A batch is the rows with id in (after, after + n] where n ≤ batch_size rows exist: its
`last_id` is what the export position becomes once the server accepts its body, so a
batch is never split across a position and memory stays flat whatever the backlog.

On SQLite the lines are built by SQLite itself (printf and group_concat in C, with the
GIL released), which is several times faster than formatting each row in Python and runs
beside the HTTP write of the previous batch. Elsewhere (PostgreSQL) rows are formatted by
`lines.reading_lines`. Both give the same bytes (tests/adapters/test_influx.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, select

from heliod.adapters.influx.lines import (
    MintRow,
    ReadingRow,
    mint_lines,
    reading_lines,
    reading_prefix,
)
from heliod.adapters.store import Store
from heliod.adapters.store import schema as t


@dataclass(frozen=True, slots=True)
class Batch:
    """Line protocol for the rows with id in (after, last_id]; `rows` may exceed the lines."""

    after: int
    last_id: int
    rows: int
    body: bytes

    @property
    def points(self) -> int:
        """Number of lines (points) in the body."""
        return self.body.count(b"\n") + 1 if self.body else 0


def _sql_escape(expr: str) -> str:
    """SQLite expression escaping a tag value or field key like `lines.escape`."""
    for char, escaped in ((",", r"\,"), ("=", r"\="), (" ", r"\ "), ("\n", " "), ("\r", " ")):
        expr = f"replace({expr}, '{char}', '{escaped}')"
    return expr


def _milli(col: str) -> str:
    """SQLite text of integer thousandths, like `lines.milli_text` (col is not NULL)."""
    return (
        f"(CASE WHEN {col} < 0 THEN '-' ELSE '' END"
        f" || printf('%d.%03d', abs({col}) / 1000, abs({col}) % 1000))"
    )


def _sqlite_readings_sql(devices: int) -> str:
    """The SQLite query building one batch; parameters: (device, prefix) × n, after, limit.

    The text is made of constants only (S608 below): ids and prefixes are bound parameters.
    """
    whens = " ".join("WHEN ? THEN ?" for _ in range(devices))
    unknown = f"'reading,device=' || {_sql_escape('device')} || ' '"
    prefix = f"CASE device {whens} ELSE {unknown} END" if devices else unknown
    value = (
        "CASE WHEN instr(value, '.') OR instr(lower(value), 'e') THEN value ELSE value || '.0' END"
    )
    extras = (
        f"(SELECT ',' || group_concat({_sql_escape('key')} || '=' || {value}, ',')"  # noqa: S608
        " FROM json_each(extra))"
    )
    fields = (
        f"substr((CASE WHEN e IS NULL THEN '' ELSE ',energy_wh=' || {_milli('e')} END)"
        f" || (CASE WHEN w IS NULL THEN '' ELSE ',power_w=' || {_milli('w')} END)"
        f" || (CASE WHEN extra IS NULL THEN '' ELSE coalesce({extras}, '') END), 2)"
    )
    # The common row (energy and power, no extra field) takes one printf call.
    line = (
        "CASE WHEN extra IS NULL AND e >= 0 AND w >= 0"  # noqa: S608
        " THEN printf('%senergy_wh=%d.%03d,power_w=%d.%03d %d',"
        " pre, e / 1000, e % 1000, w / 1000, w % 1000, ts_us)"
        f" ELSE (SELECT CASE WHEN f = '' THEN NULL ELSE pre || f || ' ' || ts_us END"
        f" FROM (SELECT {fields} AS f)) END"
    )
    return (
        # As a BLOB the body reaches Python as bytes, not decoded to str and encoded back.
        "SELECT count(*), max(id), CAST(group_concat(line, char(10)) AS BLOB) FROM ("  # noqa: S608
        f"SELECT id, {line} AS line FROM ("
        f"SELECT id, ts_us, energy_mwh AS e, power_mw AS w, extra, {prefix} AS pre"
        " FROM readings WHERE id > ? ORDER BY id LIMIT ?))"
    )


class ReadingSource:
    """Line protocol for the readings after a position, with each device's plant as a tag."""

    def __init__(self, store: Store, plant_of: Mapping[str, str], batch_size: int) -> None:
        self.store = store
        self.batch_size = batch_size
        self.prefixes = {d: reading_prefix(p, d) for d, p in sorted(plant_of.items())}
        self._sqlite = store.dialect == "sqlite"
        self._sql = _sqlite_readings_sql(len(self.prefixes))
        self._params: list[object] = [x for item in self.prefixes.items() for x in item]

    def batch_after(self, after: int) -> Batch:
        """The next batch of at most `batch_size` readings with id > after."""
        with self.store.read() as conn:
            if self._sqlite:
                return self._sqlite_batch(conn, after)
            r = t.readings.c
            stmt = (
                select(r.id, r.device, r.ts_us, r.energy_mwh, r.power_mw, r.extra)
                .where(r.id > after)
                .order_by(r.id)
                .limit(self.batch_size)
            )
            rows: list[ReadingRow] = [tuple(row) for row in conn.execute(stmt)]
        if not rows:
            return Batch(after, after, 0, b"")
        return Batch(after, rows[-1][0], len(rows), reading_lines(rows, self.prefixes))

    def _sqlite_batch(self, conn: Connection, after: int) -> Batch:
        params = (*self._params, after, self.batch_size)
        count, last, body = conn.exec_driver_sql(self._sql, params).one()
        if not count:
            return Batch(after, after, 0, b"")
        return Batch(after, int(last), int(count), bytes(body or b""))


class MintSource:
    """Line protocol for the mints after a position (mints.id)."""

    def __init__(self, store: Store, batch_size: int) -> None:
        self.store = store
        self.batch_size = batch_size

    def batch_after(self, after: int) -> Batch:
        """The next batch of at most `batch_size` mints with id > after."""
        m = t.mints.c
        stmt = (
            select(m.id, m.plant, m.mwh_index, m.completed_at_us, m.units, m.event)
            .where(m.id > after)
            .order_by(m.id)
            .limit(self.batch_size)
        )
        with self.store.read() as conn:
            rows: list[MintRow] = [tuple(row) for row in conn.execute(stmt)]
        if not rows:
            return Batch(after, after, 0, b"")
        return Batch(after, rows[-1][0], len(rows), mint_lines(rows))
