"""Connecting to the store: SQLite tuned for power cuts, or PostgreSQL, through one API.

Every writer is serialized: SQLite by `BEGIN IMMEDIATE`, PostgreSQL by a transaction-level
advisory lock. So ids are committed in the order they are allocated, and a consumer that
reads "everything after id N" never skips a row that commits late.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random

WRITE_LOCK_KEY = 0x68656C696F64  # "heliod": the advisory lock every PostgreSQL writer takes
BUSY_TIMEOUT_MS = 60_000  # a writer waits this long for another one (e.g. the daemon)
CACHE_KIB = 512  # page cache per SQLite connection, in KiB


class StoreError(Exception):
    """The store cannot be used; the message says what a person should do."""


STORAGE_BACKENDS = {"sqlite", "postgresql"}


def store_url(value: str, base_dir: Path) -> str:
    """A `[storage] url` made whole (a relative SQLite path joined to `base_dir`);
    ValueError naming what is wrong."""
    try:
        parsed = make_url(value)
    except ArgumentError:
        raise ValueError(f"not a database URL: {value}") from None
    if parsed.get_backend_name() not in STORAGE_BACKENDS:
        raise ValueError(f"must be a sqlite:/// or postgresql+psycopg:// URL, got {value}")
    if parsed.password is not None:
        raise ValueError("must not contain a password: use PGPASSWORD or a passfile")
    database = parsed.database or ""
    # sqlite:///x.db is relative to the config file's folder; memory and URI forms stay.
    relative = database not in {"", ":memory:"} and not database.startswith("file:")
    if parsed.get_backend_name() == "sqlite" and relative and not Path(database).is_absolute():
        parsed = parsed.set(database=str(base_dir / database))
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The database file of an sqlite:/// URL, None for other databases or memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_private(path: Path) -> None:
    """Create the database's folder (0700) and an empty database file (0600) if absent.

    SQLite would create the file 0644 (less the umask) and gives its -wal and -shm files
    the database file's mode: readings, balances and the register stay the owner's. An
    existing folder or file keeps its mode (systemd's StateDirectory= is already 0700).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str) -> Engine:
    """An engine configured for heliod's durability rules."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            create_private(path)
        engine = create_engine(
            url,
            poolclass=NullPool if path is None else None,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise StoreError(f"storage.url: unsupported database {backend!r} (use sqlite or postgresql)")


def _sqlite_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # Autocommit at the driver level: SQLAlchemy's "begin" event below issues BEGIN itself,
    # so we choose DEFERRED for readers and IMMEDIATE for writers.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets readers (the API) run while the accountant writes; synchronous=FULL makes
    # every commit durable at a power cut (NORMAL may lose the last commits in WAL mode).
    _set_wal(cur)
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Each pooled connection keeps its own page cache, filled by whatever it last read
    # (SQLite's default, 2 MB, times every connection the pool keeps, would be a tenth of
    # a small gateway's memory budget); the kernel caches the file for all of them anyway.
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.close()


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "database is locked" in str(exc)


# Several connections switching a new database to WAL at once (the daemon and a command
# started together on a fresh install) fail at once with "database is locked", whatever
# the busy timeout: the switch needs an exclusive lock SQLite does not wait for.
@retry(
    retry=retry_if_exception(_locked),
    wait=wait_random(0.005, 0.05),
    stop=stop_after_delay(BUSY_TIMEOUT_MS / 1000),
    reraise=True,
)
def _set_wal(cur: sqlite3.Cursor) -> None:
    cur.execute("PRAGMA journal_mode=WAL")


def _sqlite_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("heliod_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A serialized writer transaction: committed on success, rolled back on error."""
    with engine.connect() as conn:
        conn.execution_options(heliod_write=True)
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
            yield conn


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A consistent read-only snapshot."""
    with engine.connect() as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield conn


def check_integrity(engine: Engine, url: str) -> None:
    """Refuse a damaged SQLite file, saying how to restore it."""
    path = sqlite_path(url)
    if path is None or not path.exists():
        return
    try:
        with engine.connect() as conn:
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
    except (OperationalError, DBAPIError) as exc:
        rows = [str(exc.orig)]
    if rows != ["ok"]:
        detail = "; ".join(str(r) for r in rows[:3])
        raise StoreError(
            f"the database {path} is damaged ({detail}). heliod will not run on it. "
            f"Stop heliod, move {path.name} (and its -wal and -shm files) aside, then either "
            f"restore your latest backup to {path}, or salvage what is readable with "
            f"`sqlite3 {path.name}.damaged .recover | sqlite3 {path.name}`, then run "
            f"`heliod ledger verify`."
        )
