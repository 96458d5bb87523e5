"""A pooled SQLite connection kept by one user, through the driver, for hot paths.

The export's batch reads and position commits run a few statements a hundred times a
second; SQLAlchemy's per-statement work would cost more than the statements. Such a user
keeps one of the engine's own connections (its pragmas, its pool), in driver autocommit
mode, prepared once by `setup` and reset by `teardown` when it goes back to the pool: on
`close()`, or when the holder is dropped without it.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable
from typing import Any, cast

from heliod.adapters.store.store import Store

Prepare = Callable[[sqlite3.Connection], object]


class KeptConnection:
    """One pooled DBAPI connection, opened on first use and reopened after `close()`.

    Not locked: its user serializes its own calls. `setup` and `teardown` must not refer
    to the user (the connection goes back when the user is dropped).
    """

    def __init__(self, store: Store, setup: Prepare, teardown: Prepare) -> None:
        self._store = store
        self._setup = setup
        self._teardown = teardown
        self._raw: Any = None
        self._release: weakref.finalize[Any, KeptConnection] | None = None

    def get(self) -> sqlite3.Connection:
        """The driver connection, opened and prepared if needed."""
        if self._raw is None:
            raw = self._store.engine.raw_connection()
            try:
                self._setup(_driver(raw))
            except BaseException:
                raw.close()
                raise
            self._raw = raw
            self._release = weakref.finalize(self, _give_back, raw, self._teardown)
        return _driver(self._raw)

    def close(self) -> None:
        """Reset the connection and give it back to the pool."""
        if self._release is not None:
            self._release()
        self._raw = self._release = None


def _driver(raw: Any) -> sqlite3.Connection:
    return cast(sqlite3.Connection, raw.driver_connection)


def _give_back(raw: Any, teardown: Prepare) -> None:
    try:
        teardown(_driver(raw))
    finally:
        raw.close()
