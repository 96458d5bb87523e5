"""The export's backlog and health, read from the store (docs/export.md, "Watching it").

The export loop keeps its own counters (jobs/export/state.py); what is pending and what
was parked is read here, at the moment /healthz or /metrics asks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select

from heliod.adapters.influx.lines import MINT, READING
from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.store import get_position
from heliod.rewards.times import rfc3339


class ExportStatus(Protocol):
    """What the export loop reports of itself (jobs/export/state.py's ExportState fits)."""

    @property
    def state(self) -> str: ...
    @property
    def points(self) -> Mapping[str, int]: ...
    @property
    def failures(self) -> int: ...
    @property
    def last_success_us(self) -> int | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def failed_since_us(self) -> int | None: ...
    @property
    def error_kind(self) -> str | None: ...


def pending_counts(conn: Connection) -> tuple[int, int]:
    """(readings, mints) not yet exported: ids after the positions (readings: by id span)."""
    last_reading = conn.execute(select(func.max(t.readings.c.id))).scalar() or 0
    readings = max(0, int(last_reading) - get_position(conn, "exporter"))
    m = t.mints.c
    mints = conn.execute(
        select(func.count()).where(m.id > get_position(conn, "exporter_mints"))
    ).scalar()
    return readings, int(mints or 0)


def rejected_count(conn: Connection) -> int:
    """Points the server refused on their own, parked in export_rejects."""
    return int(conn.execute(select(func.count()).select_from(t.export_rejects)).scalar() or 0)


def export_health(store: Store, s: ExportStatus) -> dict[str, Any]:
    """The `export` object of /healthz: `pending`, and what an operator needs next."""
    with store.read() as conn:
        readings, mints = pending_counts(conn)
        parked = rejected_count(conn)
    return {
        "pending": readings + mints,
        "state": s.state,
        "last_success_at": None if s.last_success_us is None else rfc3339(s.last_success_us),
        "last_error": s.last_error if s.failed_since_us is not None else None,
        "rejected": parked,
    }


class ExportCollector(Collector):
    """Prometheus metrics of one exporter, read at scrape time (no global registry)."""

    def __init__(self, store: Store, status: ExportStatus) -> None:
        self._store = store
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """heliod_export_* families."""
        s = self._status
        with self._store.read() as conn:
            readings, mints = pending_counts(conn)
            parked = rejected_count(conn)
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
            value=parked,
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
