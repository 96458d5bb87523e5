"""Failures in a row of one job, with the last error: what /healthz reports as `jobs`.

A job that fails 3 times in a row is `failing` (docs/operations.md, "Health"); one
success ends the streak. The last error is kept after a recovery, for the record.
"""

from __future__ import annotations

import threading
from typing import Any


class Streak:
    """Counts a job's failures in a row (thread-safe: the job's thread writes, /healthz reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_row = 0
        self._last_error: str | None = None

    def failed(self, error: BaseException | str) -> None:
        """One run failed."""
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        with self._lock:
            self._in_row += 1
            self._last_error = message

    def succeeded(self) -> None:
        """One run succeeded: the streak ends."""
        with self._lock:
            self._in_row = 0

    def view(self) -> dict[str, Any]:
        """{"failures": failures in a row, "last_error": text or None}."""
        with self._lock:
            return {"failures": self._in_row, "last_error": self._last_error}
