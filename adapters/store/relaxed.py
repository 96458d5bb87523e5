"""Writer transactions whose commit does not wait for the disk, for positions that may lag.

The export position moves after every batch the server accepts: during a backlog drain
that is a hundred commits a second. Waiting for an fsync at each one (SQLite
`synchronous=FULL`, PostgreSQL `synchronous_commit=on`) would cost more than building the
batch on a gateway's SD card, and wear it. A lost position is harmless: after a power cut
the export resumes from an older position and writes the same points again (an overwrite).

So these transactions are serialized and atomic like `Store.write()`, and survive a crash
of heliod (the commit is in the OS's hands), but a power cut may undo the last ones. The
next durable commit (ingest commits every second or so) makes them durable too: SQLite
appends them to the same WAL, PostgreSQL to the same log, in commit order. Readings and
the ledger never use this. `RelaxedPositions` does the same for a position alone, on a
connection it keeps, at a fraction of the cost.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, delete, func, insert, select

from heliod.adapters.store import schema as t
from heliod.adapters.store.engine import WRITE_LOCK_KEY, sqlite_path
from heliod.adapters.store.kept import KeptConnection
from heliod.adapters.store.store import Store, set_position


@contextmanager
def relaxed_write(store: Store) -> Iterator[Connection]:
    """A serialized writer transaction committed without waiting for the disk."""
    with store.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Per connection, outside any transaction; the raw driver connection is in
            # autocommit mode, so this does not open one.
            conn.connection.driver_connection.execute("PRAGMA synchronous=NORMAL")  # type: ignore[union-attr]
        try:
            conn.execution_options(heliod_write=True)
            with conn.begin():
                if not sqlite:
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
                yield conn
        finally:
            if sqlite:  # the pooled connection goes back as every other writer expects it
                conn.connection.driver_connection.execute("PRAGMA synchronous=FULL")  # type: ignore[union-attr]


# One statement, no SQLAlchemy: the export commits a position per batch (a hundred a
# second during a backlog), and statement compilation would cost ten times the commit.
_SQLITE_UPSERT = (
    "INSERT INTO positions (consumer, position, updated_us) VALUES (?, ?, ?)"
    " ON CONFLICT (consumer) DO UPDATE"
    " SET position = excluded.position, updated_us = excluded.updated_us"
)


def trim_outbox(store: Store, position: int, limit: int) -> int:
    """Delete at most `limit` of the export outbox rows whose readings are all at or
    before `position`, oldest first, in one relaxed transaction; returns how many.

    The export only ever reads rows after its position, so when they are deleted does
    not matter: the exporter does it in small steps while it is idle (deleting them with
    each position would double the disk writes of a backlog drain and halve its speed),
    and a step undone by a power cut is simply done again.
    """
    o = t.export_outbox.c
    with store.read() as conn:  # nothing to delete (the usual case): no write transaction
        first = conn.execute(select(func.min(o.last_id))).scalar()
    if first is None or first > position:
        return 0
    oldest = select(o.last_id).where(o.last_id <= position).order_by(o.last_id).limit(limit)
    with relaxed_write(store) as conn:
        bound = conn.execute(select(func.max(oldest.subquery().c.last_id))).scalar()
        if bound is None:
            return 0
        return int(conn.execute(delete(t.export_outbox).where(o.last_id <= bound)).rowcount)


class RelaxedPositions:
    """Sets consumers' positions in relaxed transactions on a connection kept for them.

    On an SQLite file the connection keeps `synchronous=NORMAL` and commits with three
    driver statements (about 15 µs instead of 200 µs through `relaxed_write`); elsewhere
    each call is a `relaxed_write`. `close()` gives the connection back to the pool.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._fast = store.dialect == "sqlite" and sqlite_path(store.url) is not None
        self._kept = KeptConnection(store, _relaxed_sync, _full_sync)
        self._lock = threading.Lock()

    def set(self, consumer: str, position: int, now_us: int) -> None:
        """Commit `consumer`'s position (atomic and serialized like any writer)."""
        if not self._fast:
            with relaxed_write(self.store) as conn:
                set_position(conn, consumer, position, now_us)
            return
        with self._lock:
            db = self._kept.get()
            try:
                db.execute("BEGIN IMMEDIATE")  # waits for another writer (busy_timeout)
                db.execute(_SQLITE_UPSERT, (consumer, position, now_us))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Give the connection back (reopened if `set` is called again)."""
        with self._lock:
            self._kept.close()


def _relaxed_sync(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA synchronous=NORMAL")  # driver autocommit: no transaction


def _full_sync(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA synchronous=FULL")  # as every other writer expects it


def park_rejects(
    store: Store,
    measurement: str,
    parked: list[tuple[str, str]],
    *,
    consumer: str,
    last: int,
    now: int,
) -> None:
    """Store lines the export server refused (with why) and move `consumer` past them, at once."""
    with relaxed_write(store) as conn:
        conn.execute(
            insert(t.export_rejects),
            [
                {"measurement": measurement, "line": line, "reason": why, "created_us": now}
                for line, why in parked
            ],
        )
        set_position(conn, consumer, last, now)
