"""Modbus polling: each device on its own interval, readings handed on in timed batches.

APScheduler's BackgroundScheduler is the clock; a LinkExecutor runs the polls: the
devices behind one link (a TCP gateway or a serial line) are polled one after the other,
as the gateway requires, healthy links share a small pool of workers, and a slow or dead
link is moved to a thread of its own so that it never delays another link. Readings are
buffered and handed to the sink at most every `flush_interval_s`, so the store is not
written per reading. docs/modbus.md explains the design and its measured cost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from heliod.adapters.clock import utc_now
from heliod.adapters.errors import AdapterError, PermanentError
from heliod.adapters.modbus import ConnectionPool, ModbusDevice, ModbusDeviceSettings
from heliod.adapters.modbus.executor import LinkExecutor
from heliod.rewards.freshness import DeviceState, is_stale
from heliod.rewards.readings import Reading

log = logging.getLogger(__name__)

Sink = Callable[[list[Reading]], None]
# Told of every poll: device id, whether it answered, seconds it took (the metrics).
PollObserver = Callable[[str, bool, float], None]
_US = timedelta(microseconds=1)
ERROR_AFTER_FAILURES = 3  # retryable failures in a row before the device shows "error"
LOG_INTERVAL_S = 60.0  # a failing device logs its first failure, then at most a line a minute

__all__ = ["DeviceHealth", "PollObserver", "Poller", "PollerCounters"]


@dataclass(frozen=True, slots=True)
class PollerCounters:
    """Counters for the metrics: readings dropped, polls skipped per device."""

    dropped: int  # readings dropped because the sink failed for too long
    skipped: Mapping[str, int]  # polls not started because the previous one still ran
    failures: Mapping[str, int]  # failed polls per device
    dedicated_links: int  # links moved to a thread of their own since start


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """What /healthz and the metrics show for one device."""

    state: DeviceState
    last_reading_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    polls: int  # successful polls
    failures: int  # failed polls
    skipped: int  # polls not started because the previous one was still running

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; times in RFC 3339 UTC with Z."""
        at = self.last_reading_at
        return {
            "state": self.state,
            "last_reading_at": None
            if at is None
            else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
        }


class _Record:
    """Mutable per-device counters, guarded by the poller's lock."""

    def __init__(self, interval_s: float, started_at: datetime) -> None:
        self.interval = timedelta(seconds=interval_s)
        self.started_at = started_at
        self.last_reading_at: datetime | None = None
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.permanent = False
        self.polls = self.failures = self.skipped = 0
        self.logged_at: float | None = None  # monotonic time of the last failure logged
        self.unlogged = 0  # failures since that line

    def health(self, now: datetime) -> DeviceHealth:
        failing = self.consecutive_failures > 0
        since = self.last_reading_at or self.started_at
        if failing and (self.permanent or self.consecutive_failures >= ERROR_AFTER_FAILURES):
            state: DeviceState = "error"
        elif is_stale(0, (now - since) // _US, self.interval // _US):
            state = "stale"
        else:
            state = "ok"
        return DeviceHealth(
            state,
            self.last_reading_at,
            self.consecutive_failures,
            self.last_error,
            self.polls,
            self.failures,
            self.skipped,
        )


class Poller:
    """Polls Modbus devices on their intervals and hands readings to `sink` in batches.

    APScheduler is the clock: one interval job per group of devices sharing an interval.
    A job only queues its devices on a LinkExecutor, which runs each link's polls in
    order; a device whose previous poll is still queued or running is skipped, and counted.
    """

    WATCH_S = 0.5  # how often stuck shared workers are looked for (a wake-up costs CPU)

    def __init__(
        self,
        devices: Sequence[ModbusDeviceSettings],
        sink: Sink,
        *,
        clock: Callable[[], datetime] = utc_now,
        flush_interval_s: float = 1.0,
        pool: ConnectionPool | None = None,
        max_buffer: int = 100_000,
        workers: int = 1,
        slow_s: float = 0.5,
        log_interval_s: float = LOG_INTERVAL_S,
        on_poll: PollObserver | None = None,
    ) -> None:
        ids = [d.id for d in devices]
        if len(set(ids)) != len(ids):
            raise PermanentError("device ids must be unique")
        self._sink = sink
        self._clock = clock
        self._pool = pool or ConnectionPool()
        self._max_buffer = max_buffer
        self._lock = threading.Lock()
        self._buffer: list[Reading] = []
        self._flush_lock = threading.Lock()
        self.dropped = 0  # readings dropped because the sink failed for too long
        self._stopping = False
        self._stopped = threading.Event()
        self._log_interval_s = log_interval_s
        self._on_poll = on_poll
        now = clock()
        self._records = {d.id: _Record(d.poll_interval_s, now) for d in devices}
        # One device at a time: a device that cannot be built (a bad profile file, a link
        # that conflicts with another device's) shows "error"; the others are polled.
        self._devices: dict[str, ModbusDevice] = {}
        for settings in devices:
            try:
                self._devices[settings.id] = ModbusDevice(settings, self._pool, clock)
            except PermanentError as exc:
                self._failed(settings.id, exc)
        devices = [d for d in devices if d.id in self._devices]
        self._link_of = {d.id: self._pool.connection_key(d) for d in devices}
        self._tasks = {d.id: partial(self._poll, d.id) for d in devices}
        self._executor = LinkExecutor(workers=workers, slow_s=slow_s)
        scheduler_log = logging.Logger(f"{__name__}.scheduler")  # private: no global config
        scheduler_log.parent = log
        self._scheduler = BackgroundScheduler(
            timezone="UTC",
            logger=scheduler_log,
            # Queuing polls is quick: done in the scheduler's thread.
            executors={"default": DebugExecutor()},
        )
        by_interval: dict[float, list[str]] = {}
        for settings in devices:
            by_interval.setdefault(settings.poll_interval_s, []).append(settings.id)
        for interval, group in by_interval.items():
            self._scheduler.add_job(
                self._dispatch,
                IntervalTrigger(seconds=interval),
                args=[tuple(group)],
                id=f"poll-{interval}s",
                coalesce=True,
                misfire_grace_time=None,
                # At once, in the scheduler's time: the real clock. The daemon's clock may
                # be a simulated one (the demo), and a start in its past would make
                # APScheduler list every missed run since then before coalescing them.
                next_run_time=datetime.now(UTC),
            )
        # The watch and the flush each on a small thread: as APScheduler jobs they were 3
        # of its 4 runs a second, each costing about as much CPU as a poll (a fixed cost
        # that small sites, with few devices, pay per poll; docs/performance.md).
        self._housekeepers = [
            self._every(self.WATCH_S, self._executor.watch, "modbus-watch"),
            self._every(flush_interval_s, self.flush, "modbus-flush"),
        ]

    def start(self) -> None:
        """Start polling in background threads."""
        self._executor.start()
        self._scheduler.start()
        for thread in self._housekeepers:
            thread.start()

    def stop(self, timeout_s: float = 8.0) -> None:
        """Stop: no new polls, cut the links (a read in flight fails at once), flush."""
        self._stopping = True
        self._stopped.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        # Closing first: a read stuck on a silent device would otherwise hold its worker
        # for timeout × (retries + 1), longer than systemd waits after SIGTERM.
        self._pool.close()
        self._executor.shutdown(timeout_s)
        self.flush()  # after a flush in progress, if any: they share a lock
        for thread in self._housekeepers:
            if thread.is_alive():
                thread.join(1.0)
        self._log_suppressed()

    def counters(self) -> PollerCounters:
        """Dropped readings, skipped and failed polls (for the Prometheus metrics)."""
        with self._lock:
            return PollerCounters(
                dropped=self.dropped,
                skipped={d: r.skipped for d, r in self._records.items()},
                failures={d: r.failures for d, r in self._records.items()},
                dedicated_links=self._executor.dedicated,
            )

    def _dispatch(self, device_ids: tuple[str, ...]) -> None:
        if self._stopping:
            return
        refused = self._executor.submit_many(
            (self._link_of[device_id], device_id, self._tasks[device_id])
            for device_id in device_ids
        )
        if refused:
            with self._lock:
                for device_id in refused:
                    self._records[device_id].skipped += 1

    def health(self) -> dict[str, DeviceHealth]:
        """Per-device state for /healthz and metrics."""
        now = self._clock()
        with self._lock:
            return {device_id: rec.health(now) for device_id, rec in self._records.items()}

    def poll_now(self, device_id: str) -> Reading | None:
        """Poll one device in the calling thread, as a scheduled poll would (tests, `read`)."""
        self._poll(device_id)
        with self._lock:
            return next((r for r in reversed(self._buffer) if r.device == device_id), None)

    def flush(self) -> None:
        """Hand buffered readings to the sink; on failure keep them for the next flush."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                self._sink(batch)
            except Exception:
                log.exception("sink refused a batch of %d readings; kept for retry", len(batch))
                with self._lock:
                    self._buffer[:0] = batch
                    excess = len(self._buffer) - self._max_buffer
                    if excess > 0:
                        del self._buffer[:excess]
                        self.dropped += excess

    def _every(self, seconds: float, action: Callable[[], None], name: str) -> threading.Thread:
        """A thread running `action` every `seconds` until stop."""

        def loop() -> None:
            while not self._stopped.wait(seconds):
                try:
                    action()
                except Exception:
                    log.exception("%s failed", name)

        return threading.Thread(target=loop, name=name, daemon=True)

    def _poll(self, device_id: str) -> bool:
        """One poll; False when it failed (the executor gives the link a thread of its own)."""
        return self._stopping or self._poll_device(device_id)

    def _poll_device(self, device_id: str) -> bool:
        device = self._devices[device_id]
        started = time.monotonic()
        try:
            reading = device.poll()
        except Exception as exc:
            if self._on_poll is not None:
                self._on_poll(device_id, False, time.monotonic() - started)
            if self._stopping:  # cut by stop(): not the device's fault
                log.debug("%s: poll interrupted by stop: %s", device_id, exc)
                return True
            self._failed(device_id, exc)
            return False
        if self._on_poll is not None:
            self._on_poll(device_id, True, time.monotonic() - started)
        with self._lock:
            rec = self._records[device_id]
            if rec.consecutive_failures:
                log.info(
                    "%s: answering again after %d failed polls", device_id, rec.consecutive_failures
                )
            rec.logged_at, rec.unlogged = None, 0
            rec.polls += 1
            rec.consecutive_failures = 0
            rec.permanent = False
            rec.last_reading_at = reading.ts
            if reading.fields:  # a device that answered with no value has nothing to store
                self._buffer.append(reading)
        return True

    def _failed(self, device_id: str, exc: Exception) -> None:
        permanent = isinstance(exc, PermanentError)
        message = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        with self._lock:
            rec = self._records[device_id]
            rec.failures += 1
            rec.consecutive_failures += 1
            rec.permanent = permanent
            rec.last_error = message
            # Rate-limited per device: messages change at every poll (backoff countdowns),
            # so a switched-off inverter would otherwise log a line per poll all night.
            if rec.logged_at is not None and now - rec.logged_at < self._log_interval_s:
                rec.unlogged += 1
                log.debug("%s: still failing: %s", device_id, message)
                return
            first, unlogged = rec.logged_at is None, rec.unlogged
            rec.logged_at, rec.unlogged = now, 0
            failing = rec.consecutive_failures
        if not first:
            level = logging.ERROR if permanent else logging.WARNING
            log.log(
                level,
                "%s: still failing after %d polls (%d not logged): %s",
                device_id,
                failing,
                unlogged,
                message,
            )
        elif permanent:
            log.error("%s: %s (a person must act; polling goes on)", device_id, message)
        elif isinstance(exc, AdapterError):
            log.warning("%s: %s", device_id, message)
        else:  # a bug, not a device fault: keep the traceback
            log.error("%s: poll crashed", device_id, exc_info=exc)

    def _log_suppressed(self) -> None:
        """At stop: one line per device whose last failures were not logged."""
        with self._lock:
            pending = [
                (d, r.unlogged, r.last_error) for d, r in self._records.items() if r.unlogged
            ]
        for device_id, count, message in pending:
            log.warning("%s: %d more failed polls were not logged: %s", device_id, count, message)
