"""Prometheus metrics, in a registry built by the runtime (never the global default one).

Two sources: counters the running parts increment (readings stored and rejected, polls and
their latency, job failures), and figures read from the store at scrape time (MWh and
units minted, accounted energy, anomalies, export and push backlogs), so these survive
restarts and match what `ledger verify` sees. Prometheus values are floats: fine for
graphs, never read back into accounting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t

if TYPE_CHECKING:
    from heliod.daemon.polling import PollerCounters

log = logging.getLogger("heliod.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Modbus polls take 10 ms on a LAN, seconds through a slow RTU gateway or at a timeout.
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATES = ("ok", "stale", "error")


@dataclass
class Backlogs:
    """Callables giving how many items wait, read at scrape time (absent: not configured)."""

    export: Mapping[str, Callable[[], int]] = field(default_factory=dict)  # by measurement
    push: Callable[[], Mapping[str, int]] | None = None  # {"pending": N, "rejected": N}
    devices: Callable[[], Mapping[str, str]] | None = None  # device -> ok|stale|error


class StoreCollector(Collector):
    """Ledger figures and backlogs, read in one snapshot per scrape."""

    def __init__(self, store: Store, plants: Iterable[str], backlogs: Backlogs) -> None:
        self._store = store
        self._plants = list(plants)
        self._backlogs = backlogs

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape; a store that cannot be read gives store_up 0."""
        up = GaugeMetricFamily("heliod_store_up", "1 when the store could be read")
        try:
            yield from self._ledger()
            up.add_metric([], 1)
        except Exception as exc:
            log.warning("metrics: store unreadable: %s", exc)
            up.add_metric([], 0)
        yield up
        yield from self._backlog()

    def _ledger(self) -> Iterator[Metric]:
        mwh = CounterMetricFamily("heliod_mwh_minted", "MWh completed and minted", labels=["plant"])
        units = CounterMetricFamily(
            "heliod_units_minted", "token base units minted", labels=["plant"]
        )
        energy = GaugeMetricFamily(
            "heliod_energy_wh", "accounted energy E of the plant (Wh)", labels=["plant"]
        )
        anomalies = GaugeMetricFamily(
            "heliod_anomalies", "anomalies by kind and status", labels=["plant", "kind", "status"]
        )
        m = t.mints.c
        a = t.anomalies.c
        with self._store.read() as conn:
            # Summed here, not in SQL: units may exceed 64 bits (SQLite keeps them as text).
            minted: dict[str, tuple[int, int]] = {}
            for plant, units_of_mint in conn.execute(select(m.plant, m.units)):
                n, total = minted.get(plant, (0, 0))
                minted[plant] = (n + 1, total + int(units_of_mint))
            state = repo.load_state(conn)
            found = list(
                conn.execute(
                    select(a.plant, a.kind, a.status, func.count()).group_by(
                        a.plant, a.kind, a.status
                    )
                )
            )
        for plant in self._plants:
            n, total = minted.get(plant, (0, 0))
            mwh.add_metric([plant], n)
            units.add_metric([plant], float(total))
            plant_state = state.plants.get(plant)
            energy.add_metric([plant], (plant_state.e_mwh if plant_state else 0) / 1000)
        for plant, kind, status, count in found:
            anomalies.add_metric([plant, kind, status], count)
        yield from (mwh, units, energy, anomalies)

    def _backlog(self) -> Iterator[Metric]:
        export = GaugeMetricFamily(
            "heliod_export_backlog", "stored items not yet exported", labels=["measurement"]
        )
        for name, pending in self._backlogs.export.items():
            try:
                export.add_metric([name], pending())
            except Exception as exc:
                log.debug("metrics: export backlog %s: %s", name, exc)
        yield export
        if self._backlogs.push is not None:
            push = GaugeMetricFamily(
                "heliod_push_backlog", "mint events not yet acknowledged", labels=["state"]
            )
            try:
                for state, n in self._backlogs.push().items():
                    push.add_metric([state], n)
            except Exception as exc:
                log.debug("metrics: push backlog: %s", exc)
            yield push
        if self._backlogs.devices is not None:
            up = GaugeMetricFamily(
                "heliod_device_state", "1 for the device's state", labels=["device", "state"]
            )
            for device, state in self._backlogs.devices().items():
                for s in STATES:
                    up.add_metric([device, s], 1 if s == state else 0)
            yield up


@dataclass
class IntakeCounts:
    """Counters kept by the intake parts, read at scrape time (None: part not configured)."""

    # (device, reason) -> MQTT messages refused since start
    bad_payloads: Callable[[], Mapping[tuple[str, str], int]] | None = None
    poller: Callable[[], PollerCounters] | None = None  # Modbus poller, totals since start


class IntakeCollector(Collector):
    """The MQTT subscriber's refused messages and the Modbus poller's skipped/dropped counts."""

    def __init__(self, counts: IntakeCounts) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        """The intake metric families of one scrape."""
        if self._counts.bad_payloads is not None:
            bad = CounterMetricFamily(
                "heliod_mqtt_bad_payloads",
                "MQTT messages refused (not JSON, missing or invalid field)",
                labels=["device", "reason"],
            )
            for (device, reason), n in sorted(self._counts.bad_payloads().items()):
                bad.add_metric([device, reason], n)
            yield bad
        if self._counts.poller is not None:
            c = self._counts.poller()
            skipped = CounterMetricFamily(
                "heliod_poller_skipped_polls",
                "Modbus polls not started because the device's previous poll still ran",
                labels=["device"],
            )
            for device, n in sorted(c.skipped.items()):
                skipped.add_metric([device], n)
            dropped = CounterMetricFamily(
                "heliod_poller_dropped_readings",
                "Modbus readings dropped because the store failed for too long",
            )
            dropped.add_metric([], c.dropped)
            dedicated = CounterMetricFamily(
                "heliod_poller_dedicated_links",
                "Modbus links moved to a thread of their own after a slow or failed poll",
            )
            dedicated.add_metric([], c.dedicated_links)
            yield from (skipped, dropped, dedicated)


class Metrics:
    """Every heliod metric, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.readings = Counter("heliod_readings", "readings stored", ["device"], registry=r)
        self.rejected = Counter(
            "heliod_readings_rejected", "readings rejected (§4)", ["device", "reason"], registry=r
        )
        self.polls = Counter(
            "heliod_polls", "device polls by result", ["device", "result"], registry=r
        )
        self.poll_seconds = Histogram(
            "heliod_poll_duration_seconds",
            "time to poll a device",
            ["device"],
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.failures = Counter(
            "heliod_failures", "failed job runs and service crashes", ["kind", "name"], registry=r
        )
        self.job_seconds = Histogram(
            "heliod_job_duration_seconds", "time a periodic job took", ["job"], registry=r
        )
        self.minted_now = Counter(
            "heliod_mints_committed",
            "MWh minted by this process since start",
            ["plant"],
            registry=r,
        )
        self.watchdog_pings = Counter(
            "heliod_watchdog_pings", "WATCHDOG=1 sent to systemd", registry=r
        )
        self.stalled = Gauge(
            "heliod_progress_age_seconds",
            "seconds since the scheduler heartbeat / last store commit",
            ["kind"],
            registry=r,
        )

    def add_store(self, store: Store, plants: Iterable[str], backlogs: Backlogs) -> None:
        """Also collect the ledger figures and backlogs at each scrape."""
        self.registry.register(StoreCollector(store, plants, backlogs))

    def add_intake(self, counts: IntakeCounts) -> None:
        """Also collect the intake's counters (MQTT bad payloads, Modbus poller) at each scrape."""
        self.registry.register(IntakeCollector(counts))

    # -- Reporter (supervisor) ---------------------------------------------------------
    def failure(self, kind: str, name: str) -> None:
        """A job run or a service failed."""
        self.failures.labels(kind, name).inc()

    def duration(self, name: str, seconds: float) -> None:
        """A job run took this long."""
        self.job_seconds.labels(name).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
