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
the ledger never use this.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from heliod.adapters.store.engine import WRITE_LOCK_KEY
from heliod.adapters.store.store import Store


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
