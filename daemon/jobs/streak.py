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


class Streaks:
    """One Streak per worker of a job (a push worker per plant): one worker's failures
    never count toward another's, and one's success never ends another's streak.

    The job's view is its worst worker's; the streaks outlive the workers (a restarted
    worker takes up its own streak again).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streaks: dict[str, Streak] = {}

    def of(self, worker: str) -> Streak:
        """The streak of `worker`, made on first use."""
        with self._lock:
            return self._streaks.setdefault(worker, Streak())

    def view(self) -> dict[str, Any]:
        """The worker with the most failures in a row: {"failures", "last_error"}."""
        with self._lock:
            streaks = list(self._streaks.values())
        views = [s.view() for s in streaks]
        worst = max(views, key=lambda v: v["failures"], default=None)
        return worst or {"failures": 0, "last_error": None}
