"""Runs the daemon's parts: long-lived services and periodic jobs, each failing on its own.

A service (the poller, the MQTT links, the HTTP server) has start/stop and optionally
`alive`; one that fails to start or dies is restarted with exponential backoff (1 s
doubling to `max_backoff_s`) and reported, and the others go on. A job (accountant batch,
export, push, register sync, retention, heartbeat) runs on an APScheduler interval; a job
that raises is logged, counted and skipped for a backoff period, then tried again.

Two executors: "core" (accountant, heartbeat) and "io" (anything that waits on the
network), so a push stuck in a 10 s timeout never delays accounting or the watchdog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger("heliod.supervisor")

Executor = Literal["core", "io"]


class Reporter(Protocol):
    """Where failures and timings go (the metrics)."""

    def failure(self, kind: str, name: str) -> None:
        """A job run or a service failed."""

    def duration(self, name: str, seconds: float) -> None:
        """A job run took this long."""


@dataclass
class Service:
    """A long-lived part: `start()` returns once it runs in the background."""

    name: str
    start: Callable[[], object]
    stop: Callable[[float], object]  # argument: seconds it may take
    alive: Callable[[], bool] | None = None  # None: trusted to recover by itself


@dataclass
class Job:
    """A periodic task; `func` returns when done (one run at a time, runs coalesced)."""

    name: str
    func: Callable[[], object]
    interval_s: float
    first_delay_s: float = 0.0
    executor: Executor = "io"


@dataclass
class _State:
    failures: int = 0  # in a row
    total_failures: int = 0
    retry_at: float = 0.0  # monotonic
    last_error: str | None = None
    running: bool = False
    started: bool = False
    last_ok: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Supervisor:
    """Starts, watches and stops services and jobs."""

    def __init__(
        self,
        reporter: Reporter | None = None,
        *,
        max_backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reporter = reporter
        self._max_backoff = max_backoff_s
        self._clock = clock
        self._services: list[Service] = []
        self._jobs: list[Job] = []
        self._state: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self.stopping = threading.Event()
        scheduler_log = logging.Logger("heliod.supervisor.scheduler")  # private, not global
        scheduler_log.parent = log
        # ERROR: "skipped: maximum number of running instances" is expected while a job
        # waits (e.g. on a busy store); the watchdog and the job's own errors report that.
        scheduler_log.setLevel(logging.ERROR)
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            logger=scheduler_log,
            # "watch" runs only the supervision job, so a wedged pool never hides a dead service.
            executors={
                "core": ThreadPoolExecutor(2),
                "io": ThreadPoolExecutor(4),
                "watch": ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # -- building ------------------------------------------------------------------------
    def add_service(self, service: Service) -> None:
        """Register a service; started in order by `start`, stopped in reverse order."""
        self._services.append(service)
        self._state[f"service:{service.name}"] = _State()

    def add_job(self, job: Job) -> None:
        """Register a periodic job."""
        self._jobs.append(job)
        self._state[f"job:{job.name}"] = _State()

    # -- running -------------------------------------------------------------------------
    def start(self) -> None:
        """Start every service (a failure is retried later, never raised) and the scheduler."""
        for service in self._services:
            self._start_service(service)
        now = datetime.now(UTC)
        for job in self._jobs:
            self._scheduler.add_job(
                self._run_job,
                IntervalTrigger(seconds=job.interval_s),
                args=[job],
                id=job.name,
                executor=job.executor,
                next_run_time=now + timedelta(seconds=job.first_delay_s),
            )
        self._scheduler.add_job(
            self._supervise, IntervalTrigger(seconds=1.0), id="supervise", executor="watch"
        )
        self._scheduler.start()

    def stop(self, timeout_s: float) -> bool:
        """No new job runs; wait for those in flight; stop services in reverse order.

        Returns False when something was still running at the deadline.
        """
        deadline = self._clock() + timeout_s
        self.stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        clean = self.wait_idle(deadline)
        for service in reversed(self._services):
            state = self._state[f"service:{service.name}"]
            if not state.started:
                continue
            try:
                service.stop(max(0.5, deadline - self._clock()))
            except Exception:
                clean = False
                log.exception("%s: stop failed", service.name)
            state.started = False
        return clean

    def wait_idle(self, deadline: float) -> bool:
        """Wait until no job runs (or the monotonic `deadline`); True when idle."""
        with self._idle:
            while any(s.running for s in self._state.values()):
                left = deadline - self._clock()
                if left <= 0:
                    busy = [n for n, s in self._state.items() if s.running]
                    log.warning("still running at the deadline: %s", ", ".join(busy))
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def run_once(self, name: str) -> bool:
        """Run a registered job now in the calling thread (shutdown, tests); True on success."""
        job = next(j for j in self._jobs if j.name == name)
        return self._run_job(job, force=True)

    def status(self) -> dict[str, dict[str, object]]:
        """Per job and service: failing now, failures in a row and in total, last error."""
        with self._lock:
            return {
                name: {
                    "failing": s.failures > 0,
                    "in_row": s.failures,
                    "failures": s.total_failures,
                    "last_error": s.last_error,
                }
                for name, s in self._state.items()
            }

    # -- internals -----------------------------------------------------------------------
    def _backoff(self, failures: int) -> float:
        return float(min(self._max_backoff, 2 ** min(failures - 1, 30)))

    def _failed(self, key: str, kind: str, name: str, exc: BaseException) -> float:
        message = f"{type(exc).__name__}: {exc}"
        with self._lock:
            state = self._state[key]
            state.failures += 1
            state.total_failures += 1
            delay = self._backoff(state.failures)
            state.retry_at = self._clock() + delay
            repeated = state.last_error == message
            state.last_error = message
        if self._reporter is not None:
            self._reporter.failure(kind, name)
        if repeated:
            log.warning("%s %s failed again: %s; retry in %.0f s", kind, name, message, delay)
        else:
            log.error("%s %s failed; retry in %.0f s", kind, name, delay, exc_info=exc)
        return delay

    def _run_job(self, job: Job, force: bool = False) -> bool:
        key = f"job:{job.name}"
        with self._lock:
            state = self._state[key]
            if state.running or (
                not force and (self.stopping.is_set() or self._clock() < state.retry_at)
            ):
                return False
            state.running = True
        started = self._clock()
        try:
            job.func()
        except Exception as exc:
            self._failed(key, "job", job.name, exc)
            return False
        else:
            with self._lock:
                if state.failures:
                    log.info("job %s works again after %d failures", job.name, state.failures)
                state.failures = 0
                state.last_ok = self._clock()
            if self._reporter is not None:
                self._reporter.duration(job.name, self._clock() - started)
            return True
        finally:
            with self._idle:
                state.running = False
                self._idle.notify_all()

    def _start_service(self, service: Service) -> None:
        key = f"service:{service.name}"
        try:
            service.start()
        except Exception as exc:
            self._failed(key, "service", service.name, exc)
            return
        with self._lock:
            state = self._state[key]
            state.started = True
            if state.failures:
                log.info("service %s restarted", service.name)
            state.failures = 0

    def _supervise(self) -> None:
        for service in self._services:
            if self.stopping.is_set():
                return
            key = f"service:{service.name}"
            state = self._state[key]
            if self._clock() < state.retry_at:
                continue
            if state.started and (service.alive is None or service.alive()):
                continue
            if state.started:  # it died: clean up what is left of it first
                self._failed(key, "service", service.name, RuntimeError("stopped unexpectedly"))
                state.started = False
                try:
                    service.stop(2.0)
                except Exception:
                    log.debug("%s: cleanup after death failed", service.name, exc_info=True)
                continue  # restart after the backoff
            self._start_service(service)
