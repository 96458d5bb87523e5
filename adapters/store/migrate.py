"""Schema migrations with Alembic, run at start: a gateway upgraded in the field keeps its data."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    inspect,
    text,
)

from heliod.adapters.store.engine import WRITE_LOCK_KEY
from heliod.adapters.store.schema import metadata

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

# The newest revision in migrations/versions. Alembic itself (with Mako and Pygments,
# about 10 MB of a small gateway's memory) is imported only to upgrade a database at an
# older revision: a current one is recognized by reading `alembic_version`, and an empty
# one gets the current schema directly (Alembic's "create_all, then stamp head" recipe).
# tests/adapters/store/test_migrate.py checks this constant against Alembic's head and
# the directly created schema against the migrations'.
HEAD = "0008"  # after 0010: the log's tables (re-chained when main brought 0010)

# Alembic's own version table, as `alembic stamp` creates it.
_versions = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def alembic_config(url: str = "") -> AlembicConfig:
    """Alembic configuration pointing at the migrations shipped in the package."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("heliod.adapters.store") / "migrations"))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is current).

    Two heliod processes starting at once (the daemon and a command) must not both
    migrate: SQLite serializes them by `BEGIN IMMEDIATE`; on PostgreSQL the first takes
    the writers' advisory lock for the session and the second re-reads the revision
    once it holds it.
    """
    current = current_revision(engine)
    if current == HEAD:
        return
    if current is None and _create_current(engine):
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config()
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with _serialized(engine) as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        conn.commit()
        if current != head:
            logging.getLogger("heliod.store").info(
                "upgrading the store schema from %s to %s", current, head
            )
            conn.execution_options(heliod_write=True)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()


@contextmanager
def _serialized(engine: Engine) -> Iterator[Connection]:
    """A connection for schema changes; on PostgreSQL it holds the writers' advisory lock
    for the session (its DDL takes no lock on tables that do not exist yet), on SQLite
    the schema changes' own `BEGIN IMMEDIATE` serializes them."""
    pg = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if pg:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({WRITE_LOCK_KEY})")
            conn.commit()
        try:
            yield conn
        finally:
            if pg:
                conn.rollback()
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({WRITE_LOCK_KEY})")
                conn.commit()


def _create_current(engine: Engine) -> bool:
    """Give an empty database the current schema at HEAD; False if it is not empty.

    One serialized write transaction, so a second process starting at the same time
    finds the stamped schema and does nothing.
    """
    with _serialized(engine) as conn:
        return _create_if_empty(conn.execution_options(heliod_write=True))


def _create_if_empty(conn: Connection) -> bool:
    with conn.begin():
        present = set(inspect(conn).get_table_names())
        if present & ({_versions.name} | set(metadata.tables)):
            return False  # stamped meanwhile, or tables of unknown revision: Alembic decides
        logging.getLogger("heliod.store").info("creating the store schema at revision %s", HEAD)
        metadata.create_all(conn)
        _versions.create(conn)
        conn.execute(_versions.insert().values(version_num=HEAD))
    return True


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if value is None else str(value)


def head_revision() -> str:
    """The newest revision Alembic finds in the shipped migrations."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())
