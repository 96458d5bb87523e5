"""What the export loop tells /healthz and /metrics: pending rows, last success, last error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select

from heliod.adapters.influx import MINT, READING
from heliod.adapters.store import schema as t
from heliod.adapters.store.store import get_position
from heliod.rewards.times import rfc3339

if TYPE_CHECKING:
    from heliod.daemon.exporter import Exporter

State = Literal["ok", "retrying", "error"]


class LineWriter(Protocol):
    """Writes one line-protocol body; raises RetryableError or PermanentError."""

    def write(self, body: bytes) -> None:
        """Return only once the server accepted every point of `body`."""


def pending_counts(conn: Connection) -> tuple[int, int]:
    """(readings, mints) not yet exported: ids after the positions (readings: by id span)."""
    last_reading = conn.execute(select(func.max(t.readings.c.id))).scalar() or 0
    readings = max(0, int(last_reading) - get_position(conn, "exporter"))
    m = t.mints.c
    mints = conn.execute(
        select(func.count()).where(m.id > get_position(conn, "exporter_mints"))
    ).scalar()
    return readings, int(mints or 0)


@dataclass
class ExportState:
    """Counters and the current error, updated by the export thread, read by the API."""

    points: dict[str, int] = field(default_factory=lambda: {READING: 0, MINT: 0})
    parked: int = 0
    failures: int = 0
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
            self.failed_since_us = self.failed_since_us or now_us
            self.last_error, self.last_error_us = message, now_us
            self.permanent, self.error_kind = permanent, kind
            return news

    def recovered(self, now_us: int) -> str:
        """Clear the failure; returns a line for the log."""
        with self._lock:
            since = self.failed_since_us or now_us
            self.failed_since_us, self.permanent, self.error_kind = None, False, None
            return f"after {(now_us - since) / 1e6:.0f} s of failures ({self.last_error})"


def export_health(exporter: Exporter) -> dict[str, Any]:
    """The `export` object of /healthz: `pending` (§6) and what an operator needs next."""
    s = exporter.state
    with exporter.store.read() as conn:
        readings, mints = pending_counts(conn)
        parked = conn.execute(select(func.count()).select_from(t.export_rejects)).scalar()
    return {
        "pending": readings + mints,
        "state": s.state,
        "last_success_at": None if s.last_success_us is None else rfc3339(s.last_success_us),
        "last_error": s.last_error if s.failed_since_us is not None else None,
        "rejected": int(parked or 0),
    }


class ExportCollector(Collector):
    """Prometheus metrics of one exporter, read at scrape time (no global registry)."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """heliod_export_* families."""
        s = self.exporter.state
        with self.exporter.store.read() as conn:
            readings, mints = pending_counts(conn)
            parked = conn.execute(select(func.count()).select_from(t.export_rejects)).scalar()
        pending = GaugeMetricFamily(
            "heliod_export_pending", "Rows committed but not yet exported", labels=["measurement"]
        )
        pending.add_metric([READING], readings)
        pending.add_metric([MINT], mints)
        yield pending
        points = CounterMetricFamily(
            "heliod_export_points", "Points accepted by the server", labels=["measurement"]
        )
        for measurement, n in sorted(s.points.items()):
            points.add_metric([measurement], n)
        yield points
        yield GaugeMetricFamily(
            "heliod_export_rejected_points",
            "Points the server refused, parked in export_rejects",
            value=int(parked or 0),
        )
        yield CounterMetricFamily(
            "heliod_export_failures", "Export passes that failed", value=s.failures
        )
        up = GaugeMetricFamily("heliod_export_up", "1 when the last export pass succeeded")
        up.add_metric([], 1 if s.failed_since_us is None else 0)
        yield up
        error = GaugeMetricFamily(
            "heliod_export_error",
            "1 for the kind of the current export error (auth, refused, unavailable, other)",
            labels=["kind"],
        )
        for kind in ("auth", "refused", "unavailable", "other"):
            error.add_metric([kind], 1 if s.error_kind == kind else 0)
        yield error
        if s.last_success_us is not None:
            yield GaugeMetricFamily(
                "heliod_export_last_success_timestamp_seconds",
                "When a batch was last accepted",
                value=s.last_success_us / 1e6,
            )
