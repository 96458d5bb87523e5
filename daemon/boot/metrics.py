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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from heliod.adapters.store import Store
from heliod.daemon.read.metrics import Backlogs, StoreCollector

if TYPE_CHECKING:
    from heliod.adapters.modbus.poller import PollerCounters

log = logging.getLogger("heliod.metrics")

# Modbus polls take 10 ms on a LAN, seconds through a slow RTU gateway or at a timeout.
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class IntakeCounts:
    """Counters kept by the intake parts, read at scrape time (None: part not configured)."""

    # (device, reason) -> MQTT messages refused since start
    bad_payloads: Callable[[], Mapping[tuple[str, str], int]] | None = None
    # reason -> MQTT messages acknowledged without reaching any device since start
    unrouted: Callable[[], Mapping[str, int]] | None = None
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
        if self._counts.unrouted is not None:
            unrouted = CounterMetricFamily(
                "heliod_mqtt_unrouted_messages",
                "MQTT messages that matched no configured device (acknowledged, not stored)",
                labels=["reason"],
            )
            for reason, n in sorted(self._counts.unrouted().items()):
                unrouted.add_metric([reason], n)
            yield unrouted
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
            "heliod_readings_rejected",
            "readings rejected (docs/accounting.md, 1. Which readings count)",
            ["device", "reason"],
            registry=r,
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
        # Children of `polls` and `poll_seconds` by device (a dict read needs no lock).
        self._polls_ok: dict[str, Counter] = {}
        self._polls_failed: dict[str, Counter] = {}
        self._poll_timers: dict[str, Histogram] = {}
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

    def polled(self, device: str, ok: bool, seconds: float) -> None:
        """A Modbus poll ended (the poller's observer)."""
        # At every poll: each device's children are looked up once, since `labels()`
        # cost more than decoding the poll (docs/performance.md, "Modbus polling").
        counters = self._polls_ok if ok else self._polls_failed
        if (counter := counters.get(device)) is None:
            counter = counters[device] = self.polls.labels(device, "ok" if ok else "error")
        if (timer := self._poll_timers.get(device)) is None:
            timer = self._poll_timers[device] = self.poll_seconds.labels(device)
        counter.inc()
        timer.observe(seconds)

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
