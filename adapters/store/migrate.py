"""Schema migrations with Alembic, run at start: a gateway upgraded in the field keeps its data."""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from heliod.adapters.store.engine import WRITE_LOCK_KEY

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

# The newest revision in migrations/versions. Alembic itself (about 12 MB of a small
# gateway's memory) is imported only when the database is not at this revision;
# tests/adapters/store/test_store.py checks this constant against Alembic's head.
HEAD = "0001"


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
    if current_revision(engine) == HEAD:
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config()
    head = ScriptDirectory.from_config(cfg).get_current_head()
    pg = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if pg:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({WRITE_LOCK_KEY})")
            conn.commit()
        try:
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
        finally:
            if pg:
                conn.rollback()
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({WRITE_LOCK_KEY})")
                conn.commit()


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
