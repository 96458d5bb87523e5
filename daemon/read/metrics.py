"""Metrics read from the store at scrape time: ledger figures and backlogs (docs/operations.md).

Read at each scrape, so they survive restarts and match what `ledger verify` sees.
Prometheus values are floats: fine for graphs, never read back into accounting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.daemon.read.plants import Minted, minted
from heliod.rewards.freshness import DEVICE_STATES

log = logging.getLogger("heliod.metrics")


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
        a = t.anomalies.c
        with self._store.read() as conn:
            totals = minted(conn)
            state = repo.load_state(conn)
            found = list(
                conn.execute(
                    select(a.plant, a.kind, a.status, func.count()).group_by(
                        a.plant, a.kind, a.status
                    )
                )
            )
        for plant in self._plants:
            done = totals.get(plant, Minted())
            mwh.add_metric([plant], done.mints)
            units.add_metric([plant], float(done.units))
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
                for s in DEVICE_STATES:
                    up.add_metric([device, s], 1 if s == state else 0)
            yield up
