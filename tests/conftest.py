"""Fixtures shared by every test tier: a fresh database on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get("HELIOD_TEST_POSTGRES_URL") or os.environ.get(
    "HELIOD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(
        PG_ADMIN.replace("postgresql+psycopg", "postgresql"), autocommit=True, connect_timeout=3
    )


# Tests that run heliod as whole processes, or Hypothesis over the real accountant and
# store: CI runs them as a step of their own after the rest (`-m long`, see
# docs/development.md), so that each step stays within its time.
LONG = (
    "tests/e2e/",
    "tests/daemon/cli/test_tlog_cli.py",
    "tests/daemon/cli/test_ledger_cli.py",
    "tests/daemon/cli/test_clock_cli.py",
    "tests/daemon/jobs/test_accountant_reference.py",
    "tests/daemon/jobs/test_accountant_goal_properties.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        if where.startswith(LONG):
            item.add_marker(pytest.mark.long)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped after the test."""
    from tests.support import unavailable

    try:
        admin = _pg_admin_connect()
    except Exception as exc:
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
        raise
    name = f"heliod_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _pg_admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded SQLite store and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'heliod.db'}"
    return str(request.getfixturevalue("pg_url"))
