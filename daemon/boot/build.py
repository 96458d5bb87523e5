"""The composition root: `build_runtime(config)` builds the whole daemon from its settings.

Each part is built here, completely, before the `Runtime` that runs them exists: the
intake (Modbus poller, MQTT subscriber) feeding the store, the outputs (MQTT state,
InfluxDB export, platform push and register pull), the accountant, health, metrics and
the HTTP app. A part that a restart must rebuild (the poller's scheduler and paho's
loops cannot be started twice) is held by a `Holder` that builds a fresh one each time.
Optional parts (MQTT, export, push) and httpx exist only when configured (performance.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from heliod.adapters.clock import SYSTEM_CLOCK, Clock
from heliod.adapters.heap import TRIM_INTERVAL_S, release_free_memory
from heliod.adapters.modbus.poller import Poller, PollerCounters
from heliod.adapters.store import Store, StoreError
from heliod.daemon.boot.health import IngestMetrics, JobView, build_health
from heliod.daemon.boot.httpserver import HttpServer
from heliod.daemon.boot.logs import setup_logging
from heliod.daemon.boot.metrics import IntakeCounts, Metrics
from heliod.daemon.boot.runtime import Options, Parts, Runtime, run_until_signal
from heliod.daemon.boot.settings import Settings, secrets_of, settings_of
from heliod.daemon.boot.supervisor import Job, Service, Supervisor
from heliod.daemon.boot.systemd import Watchdog, starting, watchdog_interval_s
from heliod.daemon.config import Config
from heliod.daemon.http.api import create_app
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.jobs.intake import Ingest
from heliod.daemon.jobs.mqtt_state import StatePublisher
from heliod.daemon.jobs.retention import Retention
from heliod.daemon.read.health import DeviceSource
from heliod.daemon.read.metrics import Backlogs
from heliod.rewards.readings import Reading

log = logging.getLogger("heliod.build")

T = TypeVar("T")
Sink = Callable[[list[Reading]], None]
Counts = Callable[[], Mapping[str, int]]


class Holder(Generic[T]):
    """The current instance of a restartable part."""

    def __init__(
        self,
        factory: Callable[[], T],
        start: Callable[[T], object],
        stop: Callable[[T, float], object],
    ) -> None:
        self._factory = factory
        self._start = start
        self._stop = stop
        self.current: T | None = None

    def start(self) -> None:
        """Build a fresh instance and start it."""
        instance = self._factory()
        self._start(instance)
        self.current = instance

    def alive(self) -> bool:
        """True while the current instance reports itself alive (no `alive`: while it exists)."""
        check = getattr(self.current, "alive", None)
        return self.current is not None and (check is None or bool(check()))

    def stop(self, timeout_s: float) -> None:
        """Stop the current instance, if any."""
        instance, self.current = self.current, None
        if instance is not None:
            self._stop(instance, timeout_s)


@dataclass(frozen=True, slots=True)
class _Status:
    state: str
    last_reading_at: datetime | None = None


class _PollerTotals:
    """The poller's counters since the daemon started, across restarts of the poller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = PollerCounters(dropped=0, skipped={}, failures={}, dedicated_links=0)

    def stop(self, poller: Poller, timeout_s: float) -> None:
        """Stop a poller and keep its final counts."""
        poller.stop(timeout_s)
        with self._lock:
            self._done = _add(self._done, poller.counters())

    def total(self, current: Poller | None) -> PollerCounters:
        """The stopped pollers' counts plus those of the current one."""
        with self._lock:
            return self._done if current is None else _add(self._done, current.counters())


def _add(a: PollerCounters, b: PollerCounters) -> PollerCounters:
    def merged(x: Mapping[str, int], y: Mapping[str, int]) -> dict[str, int]:
        return {k: x.get(k, 0) + y.get(k, 0) for k in {*x, *y}}

    return PollerCounters(
        dropped=a.dropped + b.dropped,
        skipped=merged(a.skipped, b.skipped),
        failures=merged(a.failures, b.failures),
        dedicated_links=a.dedicated_links + b.dedicated_links,
    )


@dataclass
class Intake:
    """Where readings come from: the Modbus poller and the MQTT subscriber."""

    services: list[Service] = field(default_factory=list)
    device_sources: list[DeviceSource] = field(default_factory=list)
    counts: IntakeCounts = field(default_factory=IntakeCounts)


def build_intake(
    settings: Settings, sink: Sink, clock: Clock, metrics: Metrics, options: Options
) -> Intake:
    """The poller (Modbus devices) and the subscriber (MQTT devices) feeding `sink`."""
    intake = Intake()
    if settings.modbus:
        totals = _PollerTotals()
        polling = Holder(
            lambda: Poller(settings.modbus, sink, clock=clock.now, on_poll=metrics.polled),
            Poller.start,
            totals.stop,
        )
        intake.counts.poller = lambda: totals.total(polling.current)
        intake.services.append(Service("modbus-poller", polling.start, polling.stop))
        intake.device_sources.append(
            lambda: polling.current.health() if polling.current is not None else {}
        )
    mqtt = settings.mqtt
    if options.mqtt and mqtt is not None and mqtt.device_ids:
        from heliod.adapters.mqtt import BadPayloads, MqttSubscriber  # noqa: PLC0415 - optional

        bad = BadPayloads()  # one for every subscriber instance: counts survive restarts
        intake.counts.bad_payloads = lambda: bad.by_reason
        intake.counts.unrouted = lambda: bad.unrouted_by_reason
        subscribing = Holder(
            lambda: MqttSubscriber(mqtt.link, sink, clock=clock.now, bad_payloads=bad),
            MqttSubscriber.start,
            lambda s, t: s.stop(t),
        )
        intake.services.append(Service("mqtt-subscriber", subscribing.start, subscribing.stop))

        def mqtt_status() -> Mapping[str, _Status]:
            sub = subscribing.current
            failing = sub is None or (not sub.connected and sub.last_error is not None)
            # The broker is the device's link: refused or unreachable, its devices are in error.
            return {d: _Status("error") for d in mqtt.device_ids} if failing else {}

        intake.device_sources.append(mqtt_status)
    return intake


@dataclass
class Outputs:
    """Where data goes: MQTT state, InfluxDB export, platform push and register pull."""

    services: list[Service] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    state_publisher: StatePublisher | None = None
    exporting: bool = False
    export_backlog: dict[str, Callable[[], int]] = field(default_factory=dict)
    export_facts: Callable[[], Mapping[str, object]] | None = None
    sync_counts: Counts | None = None
    register_status: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None
    on_mints: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)  # first thing on SIGTERM
    job_health: dict[str, JobView] = field(default_factory=dict)  # failures in a row


def build_outputs(
    settings: Settings, store: Store, clock: Clock, metrics: Metrics, options: Options
) -> Outputs:
    """The MQTT publisher, the exporter and the platform sync that the settings ask for."""
    out = Outputs()
    mqtt = settings.mqtt
    if options.mqtt and mqtt is not None and mqtt.publish_prefix:
        from heliod.adapters.mqtt import MqttPublisher  # noqa: PLC0415 - optional part

        # The publisher's connections carry no subscriptions: a client id of their own each.
        publisher = MqttPublisher(
            mqtt.link, mqtt.publish_prefix, mqtt.plants, ha_discovery=mqtt.ha_discovery
        )
        out.state_publisher = StatePublisher(
            publisher, store, settings.intervals_us, clock.now_us, impact=settings.impact
        )
        out.services.append(Service("mqtt-publisher", publisher.start, out.state_publisher.stop))
    if options.export and settings.export is not None:
        _add_export(settings, store, clock, metrics, out)
    if options.push and settings.platform is not None:
        _add_platform(settings, store, clock, out)
    return out


def _add_export(
    settings: Settings, store: Store, clock: Clock, metrics: Metrics, out: Outputs
) -> None:
    from heliod.adapters.influx import InfluxWriter  # noqa: PLC0415 - optional part
    from heliod.daemon.jobs.export.loop import Exporter  # noqa: PLC0415
    from heliod.daemon.read.export import ExportCollector, export_health, pending_counts  # noqa: PLC0415

    export = settings.export
    assert export is not None
    exporter = Exporter(
        store,
        InfluxWriter(export.influx),
        export.plant_of,
        clock.now_us,
        batch_size=export.batch_size,
    )
    # From now on readings are stored with their line protocol (export_outbox).
    store.export_lines = export.lines
    out.exporting = True
    out.services.append(Service("exporter", exporter.start, exporter.stop))
    out.on_mints.append(exporter.wake)

    def pending() -> tuple[int, int]:
        with store.read() as conn:
            return pending_counts(conn)

    out.export_backlog = {"reading": lambda: pending()[0], "mint": lambda: pending()[1]}
    out.export_facts = lambda: export_health(store, exporter.state)
    out.job_health["export"] = lambda: {
        "failures": exporter.state.in_row,
        "last_error": exporter.state.last_error,
    }
    metrics.registry.register(ExportCollector(store, exporter.state))


def _add_platform(settings: Settings, store: Store, clock: Clock, out: Outputs) -> None:
    """Push (a worker per plant, in mint order) and the register pull, each request bounded."""
    from heliod.adapters.platform import PlatformClient  # noqa: PLC0415 - optional part
    from heliod.daemon.jobs.push import Pusher, PushWorkers  # noqa: PLC0415
    from heliod.daemon.jobs.register_pull import RegisterSync  # noqa: PLC0415
    from heliod.daemon.jobs.streak import Streak, Streaks  # noqa: PLC0415
    from heliod.daemon.read.deliveries import sync_counts  # noqa: PLC0415

    platform = settings.platform
    assert platform is not None
    streaks = Streaks()  # one per push worker (plant); they survive restarts
    out.job_health["push"] = streaks.view

    def make(wants: Callable[[str], bool], streak: Streak) -> Pusher:
        return Pusher(
            store,
            PlatformClient(platform.link),
            max_interval_s=platform.retry_max_interval_s,
            clock_us=clock.now_us,
            wants=wants,
            streak=streak,
        )

    plants = [book.rules.id for book in settings.books]
    push = Holder(lambda: PushWorkers(plants, make, streaks), PushWorkers.start, PushWorkers.stop)
    out.services.append(Service("platform-push", push.start, push.stop, push.alive))
    out.sync_counts = lambda: sync_counts(store)
    if platform.register_plants:
        link = PlatformClient(platform.link)
        register = RegisterSync(store, link, platform.register_plants, clock_us=clock.now_us)
        # The job runs every minute; RegisterSync itself pulls hourly (and at start).
        out.jobs.append(Job("register-sync", register.sync_due, 60.0, 1.0, "io"))
        out.register_status = register.status
        # A pull in flight at SIGTERM is abandoned at once, not waited for.
        out.on_stop.append(link.close)
        out.job_health["register-pull"] = register.streak


def compose(settings: Settings, store: Store, clock: Clock, options: Options) -> Parts:
    """Every part of the daemon over an open store, registered with one supervisor."""
    metrics = Metrics()
    interval = watchdog_interval_s()
    window = options.watchdog_window_s or (interval / 2 if interval else 30.0)
    watchdog = Watchdog(window)
    heartbeat_s = min(options.heartbeat_interval_s, window / 4)  # at least 4 pings per window
    ingest = Ingest(store, clock.now_us, IngestMetrics(metrics, watchdog))
    intake = build_intake(settings, ingest.ingest, clock, metrics, options)
    outputs = build_outputs(settings, store, clock, metrics, options)
    books, goals = settings.books, settings.goals
    accountant = Accountant(store, books, clock.now_us, goals=goals, log=settings.log)
    supervisor = Supervisor(metrics)
    health = build_health(
        store,
        settings.watched,
        clock,
        sources=intake.device_sources,
        sync=outputs.sync_counts,
        export=outputs.export_facts,
        register=outputs.register_status,
        rejections=ingest.rejections,
        supervisor=supervisor,
        accountant=accountant,
        jobs=outputs.job_health,
        metrics=metrics,
    )
    metrics.add_store(
        store,
        [b.rules.id for b in settings.books],
        Backlogs(
            export=outputs.export_backlog, push=outputs.sync_counts, devices=health.device_states
        ),
    )
    metrics.add_intake(intake.counts)
    host, port = options.listen or settings.listen
    app = create_app(store, settings.http, health.facts, metrics.registry, clock_us=clock.now_us)
    http = HttpServer(app, host, port)

    def account() -> None:
        # Bounded per run, so a long backlog never holds a shutdown for long.
        result = accountant.run(max_batches=20)
        watchdog.mark("commit")
        for plant, _k in result.mints:
            metrics.minted_now.labels(plant).inc()
        if result.mints:
            for wake in outputs.on_mints:
                wake()
        if outputs.state_publisher is not None:
            try:
                outputs.state_publisher.publish()
            except Exception:
                log.exception("publishing the plant state on MQTT failed")

    def probe_store() -> None:
        """Proves the store commits, when nothing else committed lately (no readings, no job)."""
        if watchdog.age("commit") > watchdog.window_s / 2:
            store.set_position("heartbeat", 0, clock.now_us())
            watchdog.mark("commit")

    retention = Retention(store, clock.now_us, settings.retention_us, exporting=outputs.exporting)
    supervisor.add_service(Service("http", http.start, http.stop, http.alive))
    for service in intake.services + outputs.services:
        supervisor.add_service(service)
    supervisor.add_job(
        Job("heartbeat", lambda: watchdog.mark("heartbeat"), heartbeat_s, executor="core")
    )
    supervisor.add_job(Job("store-probe", probe_store, heartbeat_s))
    supervisor.add_job(Job("memory-trim", release_free_memory, TRIM_INTERVAL_S, TRIM_INTERVAL_S))
    supervisor.add_job(Job("accountant", account, options.accountant_interval_s, 0.5, "core"))
    for job in outputs.jobs + options.extra_jobs:
        supervisor.add_job(job)
    supervisor.add_job(
        Job(
            "retention",
            retention.run,
            options.retention_interval_s,
            options.retention_first_delay_s,
            "io",
        )
    )
    return Parts(
        store=store,
        clock=clock,
        metrics=metrics,
        supervisor=supervisor,
        http=http,
        watchdog=watchdog,
        watchdog_interval_s=interval,
        intake=intake.services,
        on_stop=outputs.on_stop,
        summary=f"{len(settings.watched)} devices, {len(settings.books)} plants",
    )


def build_runtime(
    config: Config, clock: Clock | None = None, options: Options | None = None
) -> Runtime:
    """The whole daemon from a validated configuration; opens the store, connects nothing."""
    clock = clock or SYSTEM_CLOCK
    settings = settings_of(config, clock.rate)
    store = Store.open(config.storage.url)
    try:
        return Runtime(compose(settings, store, clock, options or Options()))
    except BaseException:
        store.close()
        raise


def run_daemon(config: Config) -> int:
    """`heliod run`: until SIGTERM or SIGINT; 0 after a clean stop, 1 if it cannot start."""
    setup_logging(config.daemon.log_level, secrets=secrets_of(config))
    try:  # systemd waits while the store is checked and migrated (docs/operations.md)
        with starting("opening the store (integrity check, schema migrations)"):
            runtime = build_runtime(config)
    except StoreError as exc:
        log.error("%s", exc)
        return 1
    return run_until_signal(runtime, threading.Event())
