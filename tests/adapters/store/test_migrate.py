"""The start-up schema check: an empty database gets the current schema without Alembic,
and that schema is the one the shipped migrations build."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, make_url, text

from heliod.adapters.store import Store
from heliod.adapters.store.migrate import HEAD, alembic_config, current_revision, head_revision
from heliod.adapters.store.schema import metadata


def test_head_constant_matches_the_shipped_migrations() -> None:
    """The cheap start-up check compares against HEAD: it must be Alembic's real head."""
    assert head_revision() == HEAD


def _differences(engine: Engine) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def _migrate_with_alembic(engine: Engine) -> None:
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def test_an_empty_database_gets_the_migrations_schema(db_url: str) -> None:
    """Direct creation and `alembic upgrade head` give the same schema, stamped at HEAD."""
    store = Store.open(db_url)
    engine = store.engine
    assert current_revision(engine) == HEAD
    assert _differences(engine) == []
    created = {name: _shape(engine, name) for name in metadata.tables}
    sqlite = engine.dialect.name == "sqlite"
    created_sql = _readings_sql(engine) if sqlite else ""

    # The same database emptied and built by the migrations instead.
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE alembic_version"))
    _migrate_with_alembic(engine)
    assert current_revision(engine) == HEAD
    assert _differences(engine) == []
    assert {name: _shape(engine, name) for name in metadata.tables} == created
    if sqlite:  # AUTOINCREMENT is not a column property: compare the tables' SQL
        assert ("AUTOINCREMENT" in _readings_sql(engine)) == ("AUTOINCREMENT" in created_sql)
        assert "AUTOINCREMENT" in created_sql
    store.close()


def _shape(engine: Engine, table: str) -> tuple[object, ...]:
    """What a query can tell apart: columns with types and nullability, keys, indexes."""
    insp = inspect(engine)
    columns = tuple((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table))
    indexes = sorted(
        (i["name"], tuple(i["column_names"]), i["unique"]) for i in insp.get_indexes(table)
    )
    uniques = sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table))
    return columns, tuple(insp.get_pk_constraint(table)["constrained_columns"]), indexes, uniques


def test_a_current_or_empty_store_opens_without_importing_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Alembic, Mako and Pygments stay out of the daemon's memory unless a store is upgraded."""
    url = f"sqlite:///{tmp_path}/heliod.db"
    assert _alembic_modules_after_open(url) == "[]"  # empty
    assert current_revision(create_engine(url)) == HEAD
    assert _alembic_modules_after_open(url) == "[]"  # current


def _alembic_modules_after_open(url: str) -> str:
    """Open a store in a new interpreter; the Alembic, Mako and Pygments modules it loaded."""
    probe = (
        "import sys\n"
        "from heliod.adapters.store import Store\n"
        f"Store.open({url!r}).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako', 'pygments')))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return run.stdout.strip()


def test_a_database_at_an_older_revision_is_upgraded_by_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Only an empty database is created directly: one that Alembic has seen (here at its
    base, an empty version table, as `alembic downgrade base` leaves it) is upgraded by the
    migrations."""
    url = f"sqlite:///{tmp_path}/heliod.db"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
    assert _alembic_modules_after_open(url) != "[]"
    assert current_revision(engine) == HEAD
    assert _differences(engine) == []


def test_concurrent_first_starts_create_the_schema_once(db_url: str) -> None:
    """Several stores opening one empty database at once: one creates it, none fails."""
    errors: list[BaseException] = []

    def open_close() -> None:
        try:
            Store.open(db_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_close) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    engine = create_engine(db_url)
    assert current_revision(engine) == HEAD
    assert _differences(engine) == []


def test_a_store_at_the_first_revision_is_upgraded_keeping_its_readings(db_url: str) -> None:
    """A gateway upgraded in the field: 0001 → HEAD by Alembic, its readings untouched."""
    from alembic import command

    if db_url.startswith("sqlite"):
        Path(make_url(db_url).database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(db_url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO readings (device, ts_us, energy_mwh, received_us)"
                " VALUES ('inv1', 1, 5000, 2)"
            )
        )
    assert current_revision(engine) == "0001"
    store = Store.open(db_url)
    assert current_revision(engine) == HEAD
    assert _differences(engine) == []
    with store.read() as conn:
        assert conn.execute(text("SELECT device, energy_mwh FROM readings")).all() == [
            ("inv1", 5000)
        ]
    store.close()
    engine.dispose()


def _readings_sql(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'readings'"
            ).scalar()
        )


def _insert_reading(engine: Engine) -> int:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO readings (device, ts_us, energy_mwh, received_us)"
                " VALUES ('inv1', 1, 5000, 2)"
            )
        )
        return int(conn.execute(text("SELECT max(id) FROM readings")).scalar() or 0)


def test_a_pruned_reading_id_is_never_handed_out_again(db_url: str) -> None:
    """Consumers read "every id after N": a reused id after pruning would be skipped."""
    store = Store.open(db_url)
    ids = [_insert_reading(store.engine) for _ in range(3)]
    with store.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM readings WHERE id = {ids[-1]}"))
    assert _insert_reading(store.engine) > ids[-1]
    if store.dialect == "sqlite":
        assert "AUTOINCREMENT" in _readings_sql(store.engine)
    store.close()


def test_the_upgrade_to_autoincrement_skips_every_id_already_used(tmp_path: Path) -> None:
    """At 0002 the newest readings may already be pruned; ids the accountant passed stay used."""
    from alembic import command

    url = f"sqlite:///{tmp_path}/heliod.db"
    engine = create_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    ids = [_insert_reading(engine) for _ in range(5)]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO positions VALUES ('accountant', 5, 0)"))
        conn.execute(text("DELETE FROM readings WHERE id > 3"))
    assert "AUTOINCREMENT" not in _readings_sql(engine)
    Store.open(url).close()
    assert current_revision(engine) == HEAD
    assert "AUTOINCREMENT" in _readings_sql(engine)
    assert _differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM readings ORDER BY id")).scalars().all() == ids[:3]
    assert _insert_reading(engine) == 6
    with engine.begin() as conn:  # and back: 0003 can be undone
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert "AUTOINCREMENT" not in _readings_sql(engine)
    assert current_revision(engine) == "0002"
    engine.dispose()
