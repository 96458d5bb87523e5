"""What the store knows of its own health: a failed write, and the free space where it lives.

/healthz reports the store `error` from a failed write until the next good commit, and
`low_space` when the disk of an embedded store runs low (docs/operations.md, "Health").
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class WriteState:
    """Whether a write failed since the last good commit, and the last error seen."""

    failing: bool
    failures: int  # failed writes since the last good commit
    last_error: str | None  # kept after a recovery, for the record


class WriteHealth:
    """Told of every write transaction's outcome by `Store.write` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures = 0
        self._last_error: str | None = None

    def failed(self, exc: BaseException) -> None:
        """A write transaction failed in the database (not in the caller's own code)."""
        orig = getattr(exc, "orig", None)  # the driver's message, without SQLAlchemy's wrapping
        message = str(orig if orig is not None else exc).strip() or type(exc).__name__
        with self._lock:
            self._failures += 1
            self._last_error = message

    def committed(self) -> None:
        """A write transaction committed."""
        with self._lock:
            self._failures = 0

    def state(self) -> WriteState:
        """A consistent snapshot."""
        with self._lock:
            return WriteState(self._failures > 0, self._failures, self._last_error)


@dataclass(frozen=True, slots=True)
class Space:
    """Free and total bytes of the file system holding the store."""

    free: int
    total: int


def space_of(path: Path | None) -> Space | None:
    """The file system of an embedded store's file (None: a server database, or unknown)."""
    if path is None:
        return None
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return None
    return Space(usage.free, usage.total)
