"""The InfluxDB export loop: the local store is the record, the time-series server a copy.

Readings go out in store order from the position `exporter` (readings.id), mints from
`exporter_mints` (mints.id). A position moves only in a store transaction committed after
the server accepted the batch, so an outage of any length loses nothing and a crash
between the two resends one batch (the same points at the same times: an overwrite).
While one batch is on the wire the next ones are built on a helper thread
(ahead.py); one batch at a time is in flight, so a crash resends at most that
one. Positions are committed on a connection kept for them, without waiting for the disk
(adapters/store/relaxed.py).

Failures: connection errors, timeouts, 429 and 5xx back off with full jitter (1 s doubling
up to `backoff_max_s`); a refused token or a missing bucket stops the export with one
clear error and is retried every `permanent_retry_s`. A batch the server refuses as data
(400, 413, 422) is bisected: lines refused on their own are parked in `export_rejects`
and the rest goes on; when more than `MAX_BISECT_REQUESTS` requests cannot isolate them
or when every point of the batch is refused (e.g. a field type clash in the bucket), the
export stops instead, and resumes by itself once the server accepts the batch.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping

from heliod.adapters.errors import PermanentError, RetryableError
from heliod.adapters.influx import (
    MINT,
    READING,
    InfluxAuthError,
    InfluxRefused,
    InfluxUnavailable,
)
from heliod.adapters.store import Store
from heliod.adapters.store.export_source import Batch, MintSource, ReadingSource
from heliod.adapters.store.ledger_repo import max_reading_id
from heliod.adapters.store.relaxed import RelaxedPositions, park_rejects, trim_outbox
from heliod.daemon.jobs.export.ahead import BuiltAhead
from heliod.daemon.jobs.export.state import ExportState, LineWriter

log = logging.getLogger("heliod.exporter")

POSITIONS = {READING: "exporter", MINT: "exporter_mints"}
READINGS = POSITIONS[READING]
TRIM_STEP = 2000  # outbox rows deleted per transaction (a few tens of ms; ingest interleaves)
MAX_BISECT_REQUESTS = 64  # enough to isolate a few bad lines in a batch of 100,000


class SystemicRefusal(PermanentError):
    """The server refuses too much of a batch to park it line by line: a person must act."""


class Exporter:
    """Exports readings and mints to one bucket; `start()` runs it on its own thread."""

    def __init__(
        self,
        store: Store,
        writer: LineWriter,
        plant_of: Mapping[str, str],
        clock_us: Callable[[], int],
        *,
        batch_size: int = 5000,
        idle_s: float = 1.0,
        backoff_max_s: float = 60.0,
        permanent_retry_s: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.writer = writer
        self.clock_us = clock_us
        self.batch_size = batch_size
        self.idle_s = idle_s
        self.backoff_max_s = backoff_max_s
        self.permanent_retry_s = permanent_retry_s
        self.readings = ReadingSource(store, plant_of, batch_size)
        self.mints = MintSource(store, batch_size)
        self.positions = RelaxedPositions(store)
        self.state = ExportState()
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------

    def start(self) -> None:
        """Export in the background until `stop()`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="heliod-exporter", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in flight (its position is committed or not at all), then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        close = getattr(self.writer, "close", None)
        if close is not None:
            close()
        self.readings.close()
        self.positions.close()

    def wake(self) -> None:
        """New rows were committed: export them now rather than after the idle wait."""
        self._wake.set()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.drain()
            except PermanentError as exc:
                failures += 1
                self._failed(exc, permanent=True)
                delay = self.permanent_retry_s
            except Exception as exc:  # retryable, store or unexpected: back off and retry
                failures += 1
                self._failed(exc, permanent=False)
                # Full jitter: uniform in [0, 1 s × 2^(n-1)], capped; never before Retry-After.
                delay = self._rng.uniform(0, min(self.backoff_max_s, 2.0 ** (failures - 1)))
                if isinstance(exc, InfluxUnavailable) and exc.retry_after_s:
                    delay = max(delay, min(exc.retry_after_s, self.backoff_max_s))
            else:
                failures = 0
                self._trim_quietly()
                self._wake.wait(self.idle_s)
                self._wake.clear()
                continue
            self._stop.wait(delay)

    def trim(self) -> int:
        """Delete the outbox rows the export has passed, a step at a time, until none is
        left, or readings newer than the position wait (sending them comes first: the
        next idle pass goes on); returns how many."""
        position = self.store.position(READINGS)
        deleted = 0
        while not self._stop.is_set() and not self._wake.is_set():
            with self.store.read() as conn:
                if max_reading_id(conn) > position:
                    break
            step = trim_outbox(self.store, position, TRIM_STEP)
            deleted += step
            if step < TRIM_STEP:
                break
        return deleted

    def _trim_quietly(self) -> None:
        try:
            self.trim()
        except Exception as exc:  # the rows stay; the next idle pass tries again
            log.warning("could not delete exported outbox rows: %s", exc)

    def _failed(self, exc: Exception, *, permanent: bool) -> None:
        message = str(exc) or type(exc).__name__
        kind = (
            "auth"
            if isinstance(exc, InfluxAuthError)
            else "refused"
            if isinstance(exc, SystemicRefusal)
            else "unavailable"
            if isinstance(exc, RetryableError)
            else "other"
        )
        news = self.state.failed(message, permanent, self.clock_us(), kind)
        if permanent and news:
            log.error("export stopped: %s; retrying every %.0f s", message, self.permanent_retry_s)
        elif news:
            log.warning(
                "export failed: %s; retrying with backoff", message, exc_info=kind == "other"
            )

    # -- one pass --------------------------------------------------------------------

    def drain(self) -> int:
        """Export everything committed so far; returns the points written. Raises on failure."""
        written = self._drain(MINT, self.mints.batch_after, ahead=False)
        written += self._drain(READING, self.readings.batch_after, ahead=True)
        if self.state.failed_since_us is not None:
            log.info("export resumed %s", self.state.recovered(self.clock_us()))
        return written

    def _drain(self, measurement: str, next_batch: Callable[[int], Batch], *, ahead: bool) -> int:
        consumer = POSITIONS[measurement]
        written = 0
        batch = next_batch(self.store.position(consumer))
        # A backlog: the next batches are built on a helper thread while this one travels.
        built = BuiltAhead(next_batch, batch.last_id) if ahead and batch.more else None
        try:
            while batch.rows:
                parked = self._send(measurement, batch.body)
                now = self.clock_us()
                # Only now that the server accepted the batch does the position move; a
                # position lost at a power cut only resends.
                if parked:
                    self._park(measurement, parked, consumer, batch.last_id, now)
                else:
                    self.positions.set(consumer, batch.last_id, now)
                accepted = batch.points - len(parked)
                self.state.exported(measurement, accepted, len(parked), now)
                written += accepted
                if not batch.more or self._stop.is_set():
                    break
                batch = built.next() if built is not None else next_batch(batch.last_id)
        finally:
            if built is not None:
                built.close()
        return written

    def _park(
        self, measurement: str, parked: list[tuple[str, str]], consumer: str, last: int, now: int
    ) -> None:
        """Store the refused lines and move the position past them, in one transaction."""
        park_rejects(self.store, measurement, parked, consumer=consumer, last=last, now=now)

    def _send(self, measurement: str, body: bytes) -> list[tuple[str, str]]:
        """Write a body; returns the lines the server refused on their own (to be parked)."""
        try:
            self.writer.write(body)
            return []
        except InfluxRefused as exc:
            lines = body.split(b"\n")
            parked = self._bisect(lines, exc, [MAX_BISECT_REQUESTS])
            if len(parked) == len(lines):
                raise SystemicRefusal(
                    f"{exc} — every point of the batch was refused; fix the bucket (e.g. a "
                    "field written before with another type), nothing is lost meanwhile"
                ) from exc
            for line, why in parked[:3]:
                log.error(
                    "InfluxDB refused a %s point, parked in export_rejects: %s (%s)",
                    measurement,
                    line,
                    why,
                )
            if len(parked) > 3:
                log.error("… and %d more refused points parked", len(parked) - 3)
            return parked

    def _bisect(
        self, lines: list[bytes], exc: InfluxRefused, budget: list[int]
    ) -> list[tuple[str, str]]:
        if len(lines) == 1:
            return [(lines[0].decode(), f"HTTP {exc.status}: {exc.detail}")]
        parked: list[tuple[str, str]] = []
        mid = len(lines) // 2
        for half in (lines[:mid], lines[mid:]):
            if budget[0] <= 0:
                raise SystemicRefusal(
                    f"{exc} — too many points refused to park them one by one; fix the bucket "
                    "(e.g. a field written with another type), nothing is lost meanwhile"
                ) from exc
            budget[0] -= 1
            try:
                self.writer.write(b"\n".join(half))
            except InfluxRefused as refused:
                parked += self._bisect(half, refused, budget)
        return parked
