"""The running daemon: `Runtime` starts, serves and stops the parts `build.py` composed.

Threads model: every part runs in background threads (the poller's scheduler and link
workers, paho's network loops, the exporter, uvicorn in a thread with its own event loop)
and one APScheduler BackgroundScheduler (the supervisor's) runs the periodic jobs. The
main thread only waits for a signal and pings the systemd watchdog.

SIGTERM: abandon a register pull in flight, stop polling and subscribing (their
buffered readings are committed), let the job in flight finish (an accountant
transaction commits or rolls back whole), account what was flushed, publish `offline`,
stop serving, exit 0 — all within 10 s.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from heliod.adapters.clock import Clock
from heliod.adapters.store import Store
from heliod.daemon.boot.httpserver import HttpServer
from heliod.daemon.boot.metrics import Metrics
from heliod.daemon.boot.supervisor import Job, Service, Supervisor
from heliod.daemon.boot.systemd import Notifier, Watchdog

log = logging.getLogger("heliod.runtime")

STOP_BUDGET_S = 8.0  # systemd's default TimeoutStopSec is 90 s; docs/operations.md says 10 s


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


@dataclass
class Parts:
    """Everything the runtime runs, built and registered with its supervisor (build.py)."""

    store: Store
    clock: Clock
    metrics: Metrics
    supervisor: Supervisor
    http: HttpServer
    watchdog: Watchdog
    watchdog_interval_s: float | None  # $WATCHDOG_USEC in seconds; None outside systemd
    intake: list[Service]  # stopped first on SIGTERM: what they hold is flushed
    summary: str  # "N devices, M plants", for the start line
    on_stop: list[Callable[[], None]] = field(default_factory=list)  # abandon outside calls


class Runtime:
    """The running daemon: start(), serve(stop_event), stop()."""

    def __init__(self, parts: Parts) -> None:
        self.store = parts.store
        self.clock = parts.clock
        self.metrics = parts.metrics
        self.supervisor = parts.supervisor
        self.http = parts.http
        self.watchdog = parts.watchdog
        self.watchdog_interval_s = parts.watchdog_interval_s
        self.intake = parts.intake
        self.summary = parts.summary
        self.on_stop = parts.on_stop
        self.notifier = Notifier()

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
        # 0. Outside calls in flight (a register pull on a slow platform) are abandoned:
        # a job waiting on one would hold the shutdown for its whole deadline.
        for cancel in self.on_stop:
            try:
                cancel()
            except Exception:
                log.exception("cancelling an outside call failed")
        # 1. No new readings: the intake flushes what it holds into the store.
        for service in self.intake:
            try:
                service.stop(max(0.5, (deadline - time.monotonic()) / 2))
            except Exception:
                clean = False
                log.exception("%s: stop failed", service.name)
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
        log.info("heliod running: %s, API on %s", runtime.summary, runtime.url)
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
