"""The composition root: `build_runtime(config)` builds the whole daemon; `run_daemon` runs it.

Threads model: every part runs in background threads (the poller's scheduler and link
workers, paho's network loops, the exporter, uvicorn in a thread with its own event loop)
and one APScheduler BackgroundScheduler (the supervisor's) runs the periodic jobs. The
main thread only waits for a signal and pings the systemd watchdog. Nothing connects at
import, and a test builds the same runtime with its own clock and ports.

SIGTERM: stop polling and subscribing (their buffered readings are committed), let the
job in flight finish (an accountant transaction commits or rolls back whole), account
what was flushed, publish `offline`, stop serving, exit 0 — all within 10 s.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from heliod.adapters.store import Store, StoreError
from heliod.adapters.store.ledger_repo import max_reading_id
from heliod.adapters.store.relaxed import trim_outbox
from heliod.adapters.store.retention import prune
from heliod.daemon.accountant import Accountant, plant_books
from heliod.daemon.config import Config
from heliod.daemon.health import Health, WatchedDevice
from heliod.daemon.httpserver import HttpServer
from heliod.daemon.logs import setup_logging
from heliod.daemon.metrics import Backlogs, Metrics
from heliod.daemon.parts import build_app, build_intake, build_outputs
from heliod.daemon.supervisor import Job, Service, Supervisor
from heliod.daemon.systemd import Notifier, Watchdog, watchdog_interval_s
from heliod.daemon.wiring import secrets_of
from heliod.rewards.readings import Reading
from heliod.rewards.times import from_us

log = logging.getLogger("heliod.runtime")

STOP_BUDGET_S = 8.0  # systemd's default TimeoutStopSec is 90 s; the contract says 10 s
US = 1_000_000
OUTBOX_STEP = 2000  # outbox rows deleted per transaction when there is no export


@dataclass(frozen=True)
class Clock:
    """The daemon's time: µs since the epoch, running `rate` clock seconds per real second."""

    now_us: Callable[[], int]
    rate: float = 1.0  # the demo runs its clock faster than real time

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        return from_us(self.now_us())


def system_clock() -> Clock:
    """The gateway's wall clock."""
    return Clock(lambda: time.time_ns() // 1000)


@dataclass
class Options:
    """What a caller (the demo, a test) may change about the runtime built from a config."""

    listen: tuple[str, int] | None = None  # None: [api] listen
    push: bool = True
    export: bool = True
    mqtt: bool = True
    accountant_interval_s: float = 1.0
    heartbeat_interval_s: float = 2.0
    watchdog_window_s: float | None = None  # None: half of WatchdogSec, else 30 s
    retention_interval_s: float = 86_400.0
    retention_first_delay_s: float = 300.0  # after start-up, not during it
    extra_jobs: list[Job] = field(default_factory=list)


class Runtime:
    """The running daemon: start(), serve(stop_event), stop()."""

    def __init__(self, config: Config, store: Store, clock: Clock, options: Options) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.options = options
        self.metrics = Metrics()
        self.notifier = Notifier()
        interval = watchdog_interval_s()
        self.watchdog_interval_s = interval
        window = options.watchdog_window_s or (interval / 2 if interval else 30.0)
        self.watchdog = Watchdog(window)
        # At least four heartbeats per window, so one late run never withholds a ping.
        self.heartbeat_s = min(options.heartbeat_interval_s, window / 4)
        self.supervisor = Supervisor(self.metrics)
        self.accountant = Accountant(store, plant_books(config), clock.now_us)
        watched = [
            WatchedDevice(d.id, int(d.expected_interval / timedelta(microseconds=1) * clock.rate))
            for _, d in config.devices()
        ]
        self.intake = build_intake(self, self.ingest)
        self.outputs = build_outputs(self)
        self.health = Health(
            store,
            watched,
            clock.now_us,
            sources=self.intake.device_sources,
            sync=self.outputs.sync_counts,
            export=self.outputs.export_counts,
        )
        self.state_publisher = self.outputs.state_publisher
        self.metrics.add_store(
            store,
            [p.id for p in config.plants],
            Backlogs(
                export=self.outputs.export_backlog,
                push=self.outputs.sync_counts,
                devices=self.health.device_states,
            ),
        )
        self.metrics.add_intake(self.intake.counts)
        host, port = options.listen or (config.api.host, config.api.port)
        self.http = HttpServer(build_app(self), host, port)
        self._register()

    # -- the parts -------------------------------------------------------------------------
    def _register(self) -> None:
        sup = self.supervisor
        sup.add_service(Service("http", self.http.start, self.http.stop, self.http.alive))
        for service in self.intake.services + self.outputs.services:
            sup.add_service(service)
        sup.add_job(Job("heartbeat", self._heartbeat, self.heartbeat_s, executor="core"))
        sup.add_job(Job("store-probe", self._probe_store, self.heartbeat_s))
        sup.add_job(
            Job("accountant", self._account, self.options.accountant_interval_s, 0.5, "core")
        )
        for job in self.outputs.jobs + self.options.extra_jobs:
            sup.add_job(job)
        sup.add_job(
            Job(
                "retention",
                self._retention,
                self.options.retention_interval_s,
                self.options.retention_first_delay_s,
                "io",
            )
        )

    def ingest(self, readings: list[Reading]) -> None:
        """The sink of the poller and the subscriber: one committed batch, or an exception."""
        result = self.store.ingest(readings, self.clock.now_us())
        self.watchdog.mark("commit")
        stored: dict[str, int] = {}
        for r in readings:
            stored[r.device] = stored.get(r.device, 0) + 1
        for device, reason in result.rejected:
            stored[device] -= 1
            self.metrics.rejected.labels(device, reason).inc()
        for device, n in stored.items():
            if n:
                self.metrics.readings.labels(device).inc(n)

    def _account(self) -> None:
        # Bounded per run, so a long backlog never holds a shutdown for long.
        result = self.accountant.run(max_batches=20)
        self.watchdog.mark("commit")
        for plant, _k in result.mints:
            self.metrics.minted_now.labels(plant).inc()
        if result.mints and self.outputs.on_mints is not None:
            self.outputs.on_mints()
        if self.state_publisher is not None:
            try:
                self.state_publisher.publish(result.mints)
            except Exception:
                log.exception("publishing the plant state on MQTT failed")

    def _heartbeat(self) -> None:
        """Proves the scheduler runs its jobs."""
        self.watchdog.mark("heartbeat")

    def _probe_store(self) -> None:
        """Proves the store commits, when nothing else committed lately (no readings, no job)."""
        if self.watchdog.age("commit") > self.watchdog.window_s / 2:
            self.store.set_position("heartbeat", 0, self.clock.now_us())
            self.watchdog.mark("commit")

    def _retention(self) -> None:
        cutoff = self.clock.now_us() - int(self.config.storage.raw_retention.total_seconds() * US)
        consumers = ["accountant"] + (["exporter"] if self.outputs.exporting else [])
        result = prune(self.store, cutoff, consumers)
        if not self.outputs.exporting:
            # Lines rendered while [influxdb] was configured: nothing will send them now
            # (should the export come back, their readings are formatted instead).
            with self.store.read() as conn:
                newest = max_reading_id(conn)
            while trim_outbox(self.store, newest, OUTBOX_STEP):
                pass
        if result.readings or result.rejected:
            log.info(
                "retention: %d readings, %d rejected readings pruned",
                result.readings,
                result.rejected,
            )

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start every service and job; returns at once (failures are retried, not raised)."""
        self.supervisor.start()

    @property
    def url(self) -> str:
        """The HTTP server's base URL."""
        return self.http.url

    def serve(self, stop: threading.Event) -> None:
        """The main loop: wait for `stop`, ping the watchdog while the work advances."""
        ping_every = self.watchdog_interval_s / 4 if self.watchdog_interval_s else None
        last_ping = 0.0
        reported: list[str] = []
        while not stop.wait(min(1.0, ping_every or 1.0)):
            for kind in Watchdog.KINDS:
                self.metrics.stalled.labels(kind).set(self.watchdog.age(kind))
            if ping_every is None or time.monotonic() - last_ping < ping_every:
                continue
            stalled = self.watchdog.stalled()
            if stalled != reported:
                if stalled:
                    log.error("no progress (%s): watchdog pings withheld", ", ".join(stalled))
                else:
                    log.info("progress again: watchdog pings resumed")
                reported = stalled
            if stalled:
                continue
            if self.notifier.watchdog():
                self.metrics.watchdog_pings.inc()
            last_ping = time.monotonic()

    def stop(self, budget_s: float = STOP_BUDGET_S) -> bool:
        """Stop within `budget_s`; True when everything stopped cleanly."""
        deadline = time.monotonic() + budget_s
        clean = True
        # 1. No new readings: the intake flushes what it holds into the store.
        for service in self.intake.services:
            try:
                service.stop(max(0.5, (deadline - time.monotonic()) / 2))
            except Exception:
                clean = False
                log.exception("%s: stop failed", service.name)
        self.intake.stopped = True
        # 2. No new job runs; the transaction in flight finishes. 3. Account what was flushed.
        self.supervisor.stopping.set()
        clean &= self.supervisor.wait_idle(deadline - 1.0)
        if time.monotonic() < deadline - 1.0:
            try:
                self.supervisor.run_once("accountant")
            except Exception:
                log.exception("final accounting failed")
        # 4. The rest, in reverse order of start: outputs publish offline, HTTP stops.
        clean &= self.supervisor.stop(max(0.5, deadline - time.monotonic()))
        self.store.close()
        self.notifier.close()
        return clean


def build_runtime(
    config: Config, clock: Clock | None = None, options: Options | None = None
) -> Runtime:
    """The whole daemon from a validated configuration; opens the store, connects nothing."""
    store = Store.open(config.storage.url)
    try:
        return Runtime(config, store, clock or system_clock(), options or Options())
    except BaseException:
        store.close()
        raise


def run_daemon(config: Config) -> int:
    """`heliod run`: until SIGTERM or SIGINT; 0 after a clean stop, 1 if it cannot start."""
    setup_logging(config.daemon.log_level, secrets=secrets_of(config))
    try:
        runtime = build_runtime(config)
    except StoreError as exc:
        log.error("%s", exc)
        return 1
    stop = threading.Event()
    return run_until_signal(runtime, stop)


def run_until_signal(
    runtime: Runtime,
    stop: threading.Event,
    status: str = "",
    on_started: Callable[[], None] | None = None,
) -> int:
    """Start, notify READY, serve until SIGTERM/SIGINT (or `stop`), stop cleanly."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, on_signal)
    try:
        runtime.start()
        if on_started is not None:
            on_started()
        runtime.notifier.ready(status or f"serving on {runtime.url}")
        log.info(
            "heliod running: %d devices, %d plants, API on %s",
            sum(1 for _ in runtime.config.devices()),
            len(runtime.config.plants),
            runtime.url,
        )
        runtime.serve(stop)
        runtime.notifier.stopping("stopping")
        started = time.monotonic()
        clean = runtime.stop()
        log.info(
            "stopped %s in %.1f s",
            "cleanly" if clean else "with parts still busy",
            time.monotonic() - started,
        )
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
