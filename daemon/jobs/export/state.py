"""What the export loop knows of itself, for /healthz and /metrics: last success, last error."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal, Protocol

from heliod.adapters.influx import MINT, READING

State = Literal["ok", "retrying", "error"]


class LineWriter(Protocol):
    """Writes one line-protocol body; raises RetryableError or PermanentError."""

    def write(self, body: bytes) -> None:
        """Return only once the server accepted every point of `body`."""


@dataclass
class ExportState:
    """Counters and the current error, updated by the export thread, read by the API."""

    points: dict[str, int] = field(default_factory=lambda: {READING: 0, MINT: 0})
    parked: int = 0
    failures: int = 0
    in_row: int = 0  # failed passes since the last good one (/healthz `jobs`)
    last_success_us: int | None = None
    last_error: str | None = None
    last_error_us: int | None = None
    failed_since_us: int | None = None
    permanent: bool = False
    error_kind: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> State:
        """ok, retrying (a passing failure) or error (a person must act)."""
        if self.failed_since_us is None:
            return "ok"
        return "error" if self.permanent else "retrying"

    def exported(self, measurement: str, points: int, parked: int, now_us: int) -> None:
        """A batch was accepted and its position committed."""
        with self._lock:
            self.points[measurement] = self.points.get(measurement, 0) + points
            self.parked += parked
            self.last_success_us = now_us

    def failed(self, message: str, permanent: bool, now_us: int, kind: str) -> bool:
        """Record a failed pass; True when it is news (first failure or another message)."""
        with self._lock:
            news = self.failed_since_us is None or message != self.last_error
            self.failures += 1
            self.in_row += 1
            self.failed_since_us = self.failed_since_us or now_us
            self.last_error, self.last_error_us = message, now_us
            self.permanent, self.error_kind = permanent, kind
            return news

    def recovered(self, now_us: int) -> str:
        """Clear the failure; returns a line for the log."""
        with self._lock:
            since = self.failed_since_us or now_us
            self.failed_since_us, self.permanent, self.error_kind = None, False, None
            self.in_row = 0
            return f"after {(now_us - since) / 1e6:.0f} s of failures ({self.last_error})"
