"""Batches of line protocol read from the store in id order, one window of rows at a time.

Readings stored while the export was on were rendered as line protocol then
(`export_outbox`, see adapters/store/schema.py): a batch is a run of consecutive outbox
rows, concatenated, with no reading read or formatted again. Readings without such a row
(stored while the export was off, or before the outbox existed) are formatted from the
`readings` table as below, up to the first outbox row.

A batch holds at most `batch_size` readings with id > `after` (so at most that many
points; a reading without fields has none): its `last_id` is what the
export position becomes once the server accepts its body, so a batch is never split
across a position and memory stays flat whatever the backlog. `more` says whether rows
after it existed when it was read (the export loop goes on without waiting).

On SQLite the lines are built by SQLite itself (one printf per row and group_concat, in C,
with the GIL released), which is several times faster than formatting each row in Python
and runs beside the HTTP write of the previous batch. The query reads a window of ids
starting at the first id after the position (no sort, no LIMIT sub-query), takes each
device's measurement-and-tags prefix from a small temporary table joined on the device,
and runs on a connection the source keeps, without SQLAlchemy's per-statement work.
Elsewhere (PostgreSQL) rows are formatted by `lines.reading_lines`. Both give the same
bytes (tests/adapters/influx/test_influx.py).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select, text

from heliod.adapters.influx.lines import (
    MintRow,
    ReadingRow,
    mint_lines,
    reading_lines,
    reading_prefix,
)
from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.engine import sqlite_path
from heliod.adapters.store.kept import KeptConnection

PREFIX_TABLE = "heliod_export_prefix"  # temporary: lives on the source's own connection
_NO_BOUND = 2**63 - 1  # any reading id
_PAGE = 128  # outbox rows read at a time


@dataclass(frozen=True, slots=True)
class Batch:
    """Line protocol for rows with id in (after, last_id]; `rows` may exceed `points`."""

    after: int
    last_id: int
    rows: int
    body: bytes
    points: int  # lines in body (a row without any field has none)
    more: bool = False  # rows with a higher id existed when the batch was read

    @classmethod
    def of(cls, after: int, last_id: int, rows: int, body: bytes, more: bool) -> Batch:
        """A batch whose points are counted from its body."""
        return cls(after, last_id, rows, body, _lines(body), more)


def _lines(body: bytes) -> int:
    return body.count(b"\n") + 1 if body else 0


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


def _sqlite_readings_sql() -> str:
    """The SQLite query building one batch; parameters: after, batch_size, last id allowed.

    Returns (rows, rows with energy or power, last id, body, newest id in the table).
    The text is made of constants only (S608 below).
    """
    unknown = f"'reading,device=' || {_sql_escape('r.device')} || ' '"
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
    # SQLite flattens the sub-queries into one scan of the rowid range [lo, lo + n): every
    # expression is evaluated once per row, hence the cheap count of rows with a field
    # (count(line) would build each line twice); rows with neither energy nor power are
    # rare and are counted from the body instead.
    return (
        f"WITH win(lo) AS (SELECT min(id) FROM readings WHERE id > ?)"  # noqa: S608
        " SELECT count(*), count(coalesce(e, w)), max(id),"
        # As a BLOB the body reaches Python as bytes, not decoded to str and encoded back.
        " CAST(group_concat(line, char(10)) AS BLOB), (SELECT max(id) FROM readings)"
        f" FROM (SELECT id, e, w, {line} AS line FROM ("
        "SELECT r.id AS id, r.ts_us AS ts_us, r.energy_mwh AS e, r.power_mw AS w,"
        f" r.extra AS extra, coalesce(p.prefix, {unknown}) AS pre"
        f" FROM readings r LEFT JOIN temp.{PREFIX_TABLE} p ON p.device = r.device"
        " WHERE r.id >= (SELECT lo FROM win) AND r.id < (SELECT lo FROM win) + ?"
        " AND r.id <= ?))"
    )


# Statements of the outbox path, with named parameters (sqlite3 and SQLAlchemy alike).
Query = Callable[[str, Mapping[str, int]], list[Any]]
_OUTBOX_RUNS = (
    "SELECT last_id, after_id, readings, points FROM export_outbox"
    " WHERE last_id > :start ORDER BY last_id LIMIT :n"
)
_ANY_READING = "SELECT 1 FROM readings WHERE id > :after AND id <= :upto LIMIT 1"
_NEWEST_READING = "SELECT max(id) FROM readings"


def _any_reading(query: Query, after: int, upto: int) -> bool:
    """Whether a reading with after < id <= upto exists (one index probe, not a count)."""
    return bool(query(_ANY_READING, {"after": after, "upto": upto}))


def _joined_bodies(dialect: str) -> str:
    """The outbox bodies of rows after < last_id <= last, joined by newlines in the
    database (one value to fetch, not one row per second of readings)."""
    if dialect == "sqlite":  # aggregated in the sub-query's order (3.44's ORDER BY is newer)
        return (
            "SELECT CAST(group_concat(body, char(10)) AS BLOB) FROM (SELECT body FROM"
            " export_outbox WHERE last_id > :after AND last_id <= :last ORDER BY last_id)"
        )
    return (
        "SELECT string_agg(body, '\\x0a'::bytea ORDER BY last_id) FROM export_outbox"
        " WHERE last_id > :after AND last_id <= :last"
    )


class ReadingSource:
    """Line protocol for the readings after a position, with each device's plant as a tag."""

    def __init__(self, store: Store, plant_of: Mapping[str, str], batch_size: int) -> None:
        self.store = store
        self.batch_size = batch_size
        self.prefixes = {d: reading_prefix(p, d) for d, p in sorted(plant_of.items())}
        # An in-memory SQLite store has no second connection to the same data.
        self._sqlite = store.dialect == "sqlite" and sqlite_path(store.url) is not None
        self._sql = _sqlite_readings_sql()
        # SQLite: a pooled connection kept for the batches, with the prefixes' table.
        self._kept = KeptConnection(
            store, partial(_create_prefixes, prefixes=self.prefixes), _drop_prefixes
        )
        self._lock = threading.Lock()
        self._joined_bodies = _joined_bodies(store.dialect)

    def batch_after(self, after: int) -> Batch:
        """The next batch of at most `batch_size` readings with id > after."""
        batch, upto = self._outbox_batch(after)
        if batch is not None:
            return batch
        if self._sqlite:
            with self._lock:
                return self._sqlite_batch(after, upto)
        r = t.readings.c
        stmt = (
            select(r.id, r.device, r.ts_us, r.energy_mwh, r.power_mw, r.extra)
            .where(r.id > after, r.id <= upto)
            .order_by(r.id)
            .limit(self.batch_size)
        )
        with self.store.read() as conn:
            rows: list[ReadingRow] = [tuple(row) for row in conn.execute(stmt)]
        if not rows:
            return Batch(after, after, 0, b"", 0)
        # Bounded by an outbox row: its batches follow at once.
        more = len(rows) >= self.batch_size or upto != _NO_BOUND
        return Batch.of(after, rows[-1][0], len(rows), reading_lines(rows, self.prefixes), more)

    def _outbox_batch(self, after: int) -> tuple[Batch | None, int]:
        """The outbox rows continuing from `after`, as one batch of at most `batch_size`
        readings; else None and the last reading id to format from `readings` instead (the
        readings before the first outbox row, or every reading when there is none).

        A handful of statements per batch, read in one snapshot: on SQLite on the
        source's own connection (SQLAlchemy's per-statement work would cost as much as
        the rest of the batch), elsewhere through SQLAlchemy.
        """
        if self._sqlite:
            with self._lock:
                db = self._kept.get()
                db.execute("BEGIN")
                try:
                    return self._from_outbox(lambda sql, p: db.execute(sql, p).fetchall(), after)
                finally:
                    db.execute("COMMIT")
        with self.store.read() as conn:
            return self._from_outbox(
                lambda sql, p: [tuple(row) for row in conn.execute(text(sql), p)], after
            )

    def _from_outbox(self, query: Query, after: int) -> tuple[Batch | None, int]:
        start = after  # moves past an outbox row the position is inside and nothing is left of
        while True:
            first = query(_OUTBOX_RUNS, {"start": start, "n": 1})
            if not first:
                return None, _NO_BOUND
            first_last, first_after, first_rows, _ = first[0]
            if first_after > start and _any_reading(query, start, first_after):
                return None, first_after  # readings stored before the row: format them
            if first_after < start:  # the position is inside the row
                if _any_reading(query, start, first_last):
                    return None, first_last  # format the rest of its readings
                start = first_last
                continue
            if first_rows > self.batch_size:  # stored while batch_size was larger
                return None, first_last
            break
        last, points, rows = start, 0, 0
        for run_last, run_after, run_rows, run_points in self._runs(query, start):
            if rows and (run_after != last or rows + run_rows > self.batch_size):
                break
            last, points, rows = run_last, points + run_points, rows + run_rows
        # The rows' pages were just read: the database's cache serves them again.
        body = bytes(query(self._joined_bodies, {"after": start, "last": last})[0][0] or b"")
        newest = query(_NEWEST_READING, {})[0][0] or 0
        return Batch(after, last, rows, body, points, more=newest > last), _NO_BOUND

    def _runs(self, query: Query, start: int) -> list[tuple[int, int, int, int]]:
        """(last_id, after_id, readings, points) of the outbox rows after `start`, read a
        page at a time until they hold `batch_size` readings: rows are often a second of
        readings each, and reading the rows of a whole week's backlog would cost more
        than the batch."""
        runs: list[tuple[int, int, int, int]] = []
        readings = 0
        while readings < self.batch_size:
            page = query(_OUTBOX_RUNS, {"start": runs[-1][0] if runs else start, "n": _PAGE})
            runs += page
            readings += sum(row[2] for row in page)
            if len(page) < _PAGE:
                break
        return runs

    def close(self) -> None:
        """Give the SQLite connection back to the pool (reopened if used again)."""
        with self._lock:
            self._kept.close()

    def _sqlite_batch(self, after: int, upto: int) -> Batch:
        db = self._kept.get()
        count, with_ew, last, body, newest = db.execute(
            self._sql, (after, self.batch_size, upto)
        ).fetchone()
        if not count:
            return Batch(after, after, 0, b"", 0)
        body = bytes(body or b"")
        last = int(last)
        more = newest is not None and int(newest) > last
        if with_ew == count:  # every row has a field: one line per row
            return Batch(after, last, int(count), body, int(count), more)
        return Batch.of(after, last, int(count), body, more)


def _create_prefixes(db: sqlite3.Connection, prefixes: Mapping[str, str]) -> None:
    """Each device's measurement-and-tags prefix, in a temporary table of the connection."""
    db.execute(f"DROP TABLE IF EXISTS temp.{PREFIX_TABLE}")
    db.execute(
        f"CREATE TEMP TABLE {PREFIX_TABLE}"
        " (device TEXT PRIMARY KEY, prefix TEXT NOT NULL) WITHOUT ROWID"
    )
    db.executemany(
        f"INSERT INTO temp.{PREFIX_TABLE} VALUES (?, ?)",  # noqa: S608
        list(prefixes.items()),
    )


def _drop_prefixes(db: sqlite3.Connection) -> None:
    db.execute(f"DROP TABLE IF EXISTS temp.{PREFIX_TABLE}")


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
            return Batch(after, after, 0, b"", 0)
        more = len(rows) >= self.batch_size
        return Batch.of(after, rows[-1][0], len(rows), mint_lines(rows), more)
