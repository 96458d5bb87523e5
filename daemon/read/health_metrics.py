"""What /healthz judges, as Prometheus metrics (docs/operations.md, "Health and metrics").

One gathering of the health facts per scrape, so a graph and /healthz never disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from heliod.daemon.read.health import Health
from heliod.daemon.read.health_report import assemble

log = logging.getLogger("heliod.metrics")

STORE_STATES = ("ok", "error", "low_space")


class HealthCollector(Collector):
    """Clocks, rejections, the store, failing jobs and unbacked plants, at each scrape."""

    def __init__(self, health: Health) -> None:
        self._health = health

    def collect(self) -> Iterator[Metric]:
        """The health metric families of one scrape."""
        degraded = GaugeMetricFamily(
            "heliod_health_degraded", "1 when /healthz says degraded (its reasons say why)"
        )
        try:
            facts = self._health.facts()
        except Exception as exc:
            log.debug("metrics: health facts unavailable: %s", exc)
            degraded.add_metric([], 1)
            yield degraded
            return
        body = assemble(facts)
        degraded.add_metric([], 1 if body["status"] == "degraded" else 0)
        yield degraded
        ahead = GaugeMetricFamily(
            "heliod_device_clock_ahead_seconds",
            "how far the device's newest stored reading is ahead of the gateway's clock (0: not)",
            labels=["device"],
        )
        rejected = GaugeMetricFamily(
            "heliod_device_rejected_readings",
            "readings of the device rejected since the daemon started",
            labels=["device"],
        )
        last = GaugeMetricFamily(
            "heliod_device_last_rejection_timestamp_seconds",
            "when a reading of the device was last rejected",
            labels=["device"],
        )
        now_us = self._health.now_us()
        for device, v in sorted(facts["devices"].items()):
            newest = v.get("newest_stored_us")
            ahead.add_metric([device], max(0, (newest or now_us) - now_us) / 1e6)
            rejected.add_metric([device], v.get("rejected", 0))
            seen = v.get("last_rejection")
            if seen and seen.get("at_us") is not None:
                last.add_metric([device], seen["at_us"] / 1e6)
        yield from (ahead, rejected, last)
        store = GaugeMetricFamily("heliod_store_state", "1 for the store's state", labels=["state"])
        for state in STORE_STATES:
            store.add_metric([state], 1 if body["store"]["state"] == state else 0)
        yield store
        if body["store"]["free_bytes"] is not None:
            yield GaugeMetricFamily(
                "heliod_store_free_bytes",
                "free bytes on the file system of the embedded store",
                value=body["store"]["free_bytes"],
            )
        in_row = GaugeMetricFamily(
            "heliod_job_failures_in_row", "failures of the job in a row", labels=["job"]
        )
        failing = GaugeMetricFamily(
            "heliod_job_failing", "1 when the job failed 3 times in a row", labels=["job"]
        )
        for name, job in body["jobs"].items():
            in_row.add_metric([name], job["failures"])
            failing.add_metric([name], 1 if job["state"] == "failing" else 0)
        yield from (in_row, failing)
        unbacked = GaugeMetricFamily(
            "heliod_plant_unbacked",
            "1 when the plant's latest mint found no backer in force",
            labels=["plant"],
        )
        for plant in sorted(facts.get("unbacked", {})):
            unbacked.add_metric([plant], 1)
        yield unbacked
