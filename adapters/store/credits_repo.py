"""Writing a mint's credit rows and the balances, inside a transaction the caller holds.

A mint may credit a million backers, so these are written in bulk: on SQLite the credit
rows go in as JSON texts of 65,536 rows each, turned into rows by SQLite itself (one
statement per text, during which Python's other threads run: the accountant hashes the
mint's verifiable-ledger trees meanwhile), elsewhere through the driver's executemany;
the balances take the mint's credit rows in one statement.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice, repeat
from json.encoder import encode_basestring  # as json.dumps(ensure_ascii=False)

from sqlalchemy import Connection, func, select

from heliod.adapters.store import schema as t
from heliod.rewards.allocation import Credits


@functools.cache
def _json_rows() -> bool:
    """Whether this process's SQLite has json_each (built in since 3.38, unless compiled
    out): asked once, of the library itself."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("SELECT key, value FROM json_each('{}')").fetchall()
    except sqlite3.Error:
        return False
    finally:
        probe.close()
    return True


def credits_in_one_pass(conn: Connection) -> bool:
    """Whether `insert_credits` hands each slice of rows to the database in one statement
    (the driver lets other threads run while it executes) rather than row by row (where
    a busy thread would make every row wait for its turn)."""
    return conn.dialect.name == "sqlite" and _json_rows()


def insert_credits(conn: Connection, plant: str, mwh_index: int, credits: Mapping[str, int]) -> int:
    """A mint's credit rows, in backer order; returns the largest credit row id before
    them (for `add_credits_to_balances`)."""
    before = conn.execute(select(func.max(t.credits.c.id))).scalar() or 0
    if isinstance(credits, Credits):
        names, units = credits.names(), iter(credits.units)
    else:
        names, units = iter(sorted(credits)), iter([credits[b] for b in sorted(credits)])
    if credits_in_one_pass(conn):
        # A JSON object of backer → units per slice, units as strings (never JSON numbers:
        # no float on the way): json_each gives its members in the text's order (so row
        # ids follow backer order, as row by row), keys and values as exact text.
        while backers := list(islice(names, _ROWS_PER_STATEMENT)):
            amounts = list(islice(units, len(backers)))
            text = "{" + ",".join(map(_MEMBER, map(encode_basestring, backers), amounts)) + "}"
            if "\\u0000" in text:  # SQLite's JSON cuts a text at NUL: these row by row
                rows = zip(repeat(plant), repeat(mwh_index), backers, map(str, amounts))
                _executemany(conn, _ROW_BY_ROW, rows)
                continue
            conn.exec_driver_sql(_FROM_JSON, (plant, mwh_index, text))
        # The driver's statement cache keeps the last text bound until the statement runs
        # again (megabytes between mints): bind an empty one, which inserts nothing.
        conn.exec_driver_sql(_FROM_JSON, (plant, mwh_index, "{}"))
    else:
        _executemany(
            conn, _ROW_BY_ROW, zip(repeat(plant), repeat(mwh_index), names, _units(conn, units))
        )
    return int(before)


_ROWS_PER_STATEMENT = 1 << 16
_ROW_BY_ROW = "INSERT INTO credits (plant, mwh_index, backer, units) VALUES (?, ?, ?, ?)"
_FROM_JSON = (
    "INSERT INTO credits (plant, mwh_index, backer, units) "
    "SELECT ?, ?, key, value FROM json_each(?)"
)
_MEMBER = '{}:"{}"'.format  # a backer as a JSON string, then its units


def _units(conn: Connection, units: Iterator[int]) -> Iterator[object]:
    """Token units as the column keeps them (ExactInt: decimal text on SQLite)."""
    return map(str, units) if conn.dialect.name == "sqlite" else units


def _executemany(conn: Connection, sql: str, rows: Iterator[tuple[object, ...]]) -> None:
    """Driver-level executemany fed by an iterator, in chunks, in the caller's transaction.

    A mint may carry a million credit rows: per-row statement processing would cost more
    than the write itself, and a list of them more memory than the ledger.
    """
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    while chunk := list(islice(rows, _ROWS_PER_CALL)):
        conn.exec_driver_sql(sql, chunk)


_ROWS_PER_CALL = 10_000


_SQLITE_INT_MAX = 2**63 - 1  # SQLite integer arithmetic is exact up to here, then floats


def add_credits_to_balances(
    conn: Connection, plant: str, mwh_index: int, minted: int, after_id: int
) -> bool:
    """Add the credit rows one mint just wrote (ids past `after_id`, from `insert_credits`)
    to its backers' balances, in one statement. False, nothing written, where the sum
    could be inexact: SQLite (decimal text) once the plant minted more than 2^63 - 1."""
    if conn.dialect.name == "postgresql":
        total = "balances.units + excluded.units"  # NUMERIC(78, 0): exact
    elif minted <= _SQLITE_INT_MAX:
        total = "CAST(CAST(balances.units AS INTEGER) + CAST(excluded.units AS INTEGER) AS TEXT)"
    else:
        return False
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        "INSERT INTO balances (plant, backer, units) SELECT plant, backer, units FROM credits "  # noqa: S608 - fixed text
        f"WHERE plant = {mark} AND mwh_index = {mark} AND id > {mark} ORDER BY id "
        f"ON CONFLICT (plant, backer) DO UPDATE SET units = {total}",
        (plant, mwh_index, after_id),
    )
    return True


def set_balances(
    conn: Connection, plant: str, backers: Iterable[str], units: Iterable[int]
) -> None:
    """Write the credited totals `units` of `backers` (two iterables in step)."""
    _executemany(
        conn,
        "INSERT INTO balances (plant, backer, units) VALUES (?, ?, ?) "
        "ON CONFLICT (plant, backer) DO UPDATE SET units = excluded.units",
        zip(repeat(plant), backers, _units(conn, iter(units))),
    )
