"""The daemon's health, wired from its parts (docs/operations.md, "Health and metrics").

`build_health` gives /healthz and the metrics what each part knows: the intake's
rejections, the jobs' failures in a row (the accountant's from the supervisor, the
export's, the push's and the register pull's from themselves), the plants whose latest
mint found no backer, and registers `Health.watch` as a job that logs wrong clocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from heliod.adapters.clock import Clock
from heliod.adapters.store import Store
from heliod.daemon.boot.metrics import Metrics
from heliod.daemon.boot.supervisor import Job, Supervisor
from heliod.daemon.boot.systemd import Watchdog
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.jobs.intake import Rejections
from heliod.daemon.read.health import DeviceSource, Health, WatchedDevice
from heliod.daemon.read.health_metrics import HealthCollector
from heliod.rewards.times import rfc3339

WATCH_INTERVAL_S = 10.0

JobView = Callable[[], Mapping[str, Any]]


class IngestMetrics:
    """The intake's report: metrics, and the watchdog's proof that the store commits."""

    def __init__(self, metrics: Metrics, watchdog: Watchdog) -> None:
        self._metrics = metrics
        self._watchdog = watchdog

    def committed(self) -> None:
        self._watchdog.mark("commit")

    def stored(self, device: str, count: int) -> None:
        self._metrics.readings.labels(device).inc(count)

    def rejected(self, device: str, reason: str) -> None:
        self._metrics.rejected.labels(device, reason).inc()


def build_health(
    store: Store,
    watched: Iterable[WatchedDevice],
    clock: Clock,
    *,
    sources: Iterable[DeviceSource],
    sync: Callable[[], Mapping[str, int]] | None,
    export: Callable[[], Mapping[str, object]] | None,
    register: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None,
    rejections: Rejections,
    supervisor: Supervisor,
    accountant: Accountant,
    jobs: Mapping[str, JobView],
    metrics: Metrics,
) -> Health:
    """/healthz's facts from the running parts; its metrics; the clock watch job."""

    def job_views() -> dict[str, Mapping[str, Any]]:
        status = supervisor.status().get("job:accountant", {})
        views: dict[str, Mapping[str, Any]] = {
            "accountant": {
                "failures": status.get("in_row", 0),
                "last_error": status.get("last_error"),
            }
        }
        views.update({name: view() for name, view in jobs.items()})
        return views

    def unbacked() -> dict[str, Mapping[str, Any]]:
        return {
            plant: {"mwh_index": u.mwh_index, "completed_at": rfc3339(u.completed_at_us)}
            for plant, u in accountant.unbacked().items()
        }

    health = Health(
        store,
        watched,
        clock.now_us,
        sources=sources,
        sync=sync,
        export=export,
        rejections=rejections.view,
        jobs=job_views,
        unbacked=unbacked,
        register=register,
    )
    metrics.registry.register(HealthCollector(health))
    supervisor.add_job(Job("health-watch", health.watch, WATCH_INTERVAL_S, 2.0, "io"))
    return health
