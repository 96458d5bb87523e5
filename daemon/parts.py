"""The daemon's parts built from the configuration: intake, outputs and the HTTP app.

Each part becomes a supervised `Service` (restartable: `start` builds a fresh instance,
because the poller's scheduler and paho's loops cannot be started twice) or a periodic
`Job`. Optional parts (MQTT, export, push) exist only when their table is configured.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fastapi import FastAPI

from heliod.daemon.api import create_app
from heliod.daemon.config import MqttDevice
from heliod.daemon.health import DeviceStatus
from heliod.daemon.metrics import IntakeCounts
from heliod.daemon.polling import Poller, PollerCounters
from heliod.daemon.supervisor import Job, Service
from heliod.daemon.wiring import modbus_settings
from heliod.rewards.readings import Reading

# The optional parts (MQTT, export, push) are imported only when configured: influxdb-client,
# paho and httpx weigh some 30 MB of a gateway's memory that a plant without them keeps.
if TYPE_CHECKING:
    from heliod.adapters.mqtt import MqttPublisher
    from heliod.daemon.metrics import Metrics
    from heliod.daemon.mqtt_wiring import StatePublisher
    from heliod.daemon.push import Pusher
    from heliod.daemon.runtime import Runtime

log = logging.getLogger("heliod.parts")

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
    last_reading_at: datetime | None


class _TimedDevice:
    """Wraps a Modbus device of the poller to time each poll (metrics)."""

    def __init__(self, device: Any, metrics: Metrics) -> None:
        self._device = device
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._device, name)

    def poll(self) -> Reading:
        started = time.monotonic()
        device_id = self._device.id
        try:
            reading: Reading = self._device.poll()
        except Exception:
            self._metrics.polls.labels(device_id, "error").inc()
            raise
        finally:
            self._metrics.poll_seconds.labels(device_id).observe(time.monotonic() - started)
        self._metrics.polls.labels(device_id, "ok").inc()
        return reading


@dataclass
class Intake:
    """Where readings come from: the Modbus poller and the MQTT subscriber."""

    services: list[Service] = field(default_factory=list)
    device_sources: list[Callable[[], Mapping[str, DeviceStatus]]] = field(default_factory=list)
    counts: IntakeCounts = field(default_factory=IntakeCounts)
    stopped: bool = False


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


def build_intake(rt: Runtime, sink: Sink) -> Intake:
    """The poller (Modbus devices) and the subscriber (MQTT devices) feeding `sink`."""
    intake = Intake()
    devices = modbus_settings(rt.config)
    if devices:

        def new_poller() -> Poller:
            poller = Poller(devices, sink, clock=rt.clock.now)
            # Poll latency: the poller has no hook for it, so its devices are wrapped.
            table = getattr(poller, "_devices", None)
            if isinstance(table, dict):
                for key, device in list(table.items()):
                    table[key] = _TimedDevice(device, rt.metrics)
            return poller

        totals = _PollerTotals()
        polling = Holder(new_poller, Poller.start, totals.stop)
        intake.counts.poller = lambda: totals.total(polling.current)
        intake.services.append(Service("modbus-poller", polling.start, polling.stop))
        intake.device_sources.append(
            lambda: polling.current.health() if polling.current is not None else {}
        )
    mqtt_ids = [d.id for _, d in rt.config.devices() if isinstance(d, MqttDevice)]
    if rt.options.mqtt and rt.config.mqtt is not None and mqtt_ids:
        from heliod.adapters.mqtt import BadPayloads, MqttSubscriber  # noqa: PLC0415 - optional
        from heliod.daemon.mqtt_wiring import mqtt_settings  # noqa: PLC0415

        settings = mqtt_settings(rt.config)
        assert settings is not None
        bad = BadPayloads()  # one for every subscriber instance: counts survive restarts
        intake.counts.bad_payloads = lambda: bad.by_reason
        subscribing = Holder(
            lambda: MqttSubscriber(settings, sink, clock=rt.clock.now, bad_payloads=bad),
            MqttSubscriber.start,
            lambda s, t: s.stop(t),
        )
        intake.services.append(Service("mqtt-subscriber", subscribing.start, subscribing.stop))

        def mqtt_status() -> Mapping[str, DeviceStatus]:
            sub = subscribing.current
            failing = sub is None or (not sub.connected and sub.last_error is not None)
            # The broker is the device's link: refused or unreachable, its devices are in error.
            return {d: _Status("error", None) for d in mqtt_ids} if failing else {}

        intake.device_sources.append(mqtt_status)
    return intake


@dataclass
class Outputs:
    """Where data goes: MQTT state, InfluxDB export, platform push."""

    services: list[Service] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    publisher: MqttPublisher | None = None
    state_publisher: StatePublisher | None = None
    exporting: bool = False
    export_backlog: dict[str, Callable[[], int]] = field(default_factory=dict)
    export_counts: Counts | None = None
    sync_counts: Counts | None = None
    on_mints: Callable[[], None] | None = None


def build_outputs(rt: Runtime) -> Outputs:
    """The MQTT publisher, the exporter and the platform sync that the config asks for."""
    out = Outputs()
    if rt.options.mqtt and rt.config.mqtt is not None:
        from heliod.daemon.mqtt_wiring import (  # noqa: PLC0415 - optional part
            StatePublisher,
            mqtt_publisher,
            mqtt_settings,
        )

        settings = mqtt_settings(rt.config)
        assert settings is not None
        publisher = mqtt_publisher(rt.config, settings)
        if publisher is not None:
            out.publisher = publisher
            out.state_publisher = StatePublisher(
                publisher, rt.store, rt.config, rt.clock.now_us, rate=rt.clock.rate
            )
            out.services.append(Service("mqtt-publisher", publisher.start, publisher.stop))
    if rt.options.export and rt.config.influxdb is not None:
        _add_export(rt, out)
    if rt.options.push and rt.config.platform is not None:
        _add_platform(rt, out)
    return out


def _add_export(rt: Runtime, out: Outputs) -> None:
    from heliod.daemon.export_status import pending_counts  # noqa: PLC0415 - optional part
    from heliod.daemon.exporter import export_lines_of, exporter_from_config  # noqa: PLC0415

    exporter = exporter_from_config(rt.config, rt.store, rt.clock.now_us)
    if exporter is None:
        return
    # From now on readings are stored with their line protocol (export_outbox).
    rt.store.export_lines = export_lines_of(rt.config)
    out.exporting = True
    out.services.append(Service("exporter", exporter.start, exporter.stop))
    out.on_mints = exporter.wake

    def pending() -> tuple[int, int]:
        with rt.store.read() as conn:
            return pending_counts(conn)

    out.export_backlog = {"reading": lambda: pending()[0], "mint": lambda: pending()[1]}
    out.export_counts = lambda: {"pending": sum(pending())}


def _add_platform(rt: Runtime, out: Outputs) -> None:
    """Push (a thread of its own: one POST at a time, in mint order) and the register pull."""
    from heliod.adapters.platform import PlatformClient, PlatformSettings  # noqa: PLC0415
    from heliod.daemon.push import Pusher  # noqa: PLC0415 - optional part
    from heliod.daemon.register_sync import RegisterSync, SyncedPlant  # noqa: PLC0415
    from heliod.daemon.sync import sync_counts  # noqa: PLC0415

    section = rt.config.platform
    assert section is not None
    settings = PlatformSettings(
        push_url=section.push_url,
        secret=rt.config.secret("platform.secret") or "",
        backers_url=section.backers_url,
        timeout_s=section.timeout.total_seconds(),
    )
    # Signatures carry real Unix seconds (the platform checks freshness), whatever the clock.
    pushing = Holder(
        lambda: _PushThread(
            Pusher(
                rt.store,
                PlatformClient(settings),
                max_interval_s=section.retry_max_interval.total_seconds(),
                clock_us=rt.clock.now_us,
            )
        ),
        _PushThread.start,
        _PushThread.stop,
    )
    out.services.append(Service("platform-push", pushing.start, pushing.stop, pushing.alive))
    out.sync_counts = lambda: sync_counts(rt.store)
    if section.backers_url:
        register = RegisterSync(
            rt.store,
            PlatformClient(settings),
            [SyncedPlant(p.id, p.tz) for p in rt.config.plants],
            clock_us=rt.clock.now_us,
        )
        # The job runs every minute; RegisterSync itself pulls hourly (and at start).
        out.jobs.append(Job("register-sync", register.sync_due, 60.0, 1.0, "io"))


class _PushThread:
    """Runs `Pusher.run` on its own thread until stopped."""

    def __init__(self, pusher: Pusher) -> None:
        self.pusher = pusher
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=pusher.run, args=(self._stop,), name="heliod-push", daemon=True
        )

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def alive(self) -> bool:
        """True while the delivery loop runs."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float) -> None:
        """Let the attempt in flight finish (its outcome is recorded), then stop."""
        self._stop.set()
        self._thread.join(timeout_s)
        close = getattr(self.pusher.sender, "close", None)
        if close is not None:
            close()


def build_app(rt: Runtime) -> FastAPI:
    """The HTTP app: the API, /healthz, /metrics and the dashboard."""
    return create_app(
        rt.store,
        rt.config,
        lambda: rt.health.report()[1],
        rt.metrics.registry,
        clock_us=rt.clock.now_us,
    )
