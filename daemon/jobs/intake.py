"""Readings into the store: the sink the Modbus poller and the MQTT subscriber hand batches to.

One call stores one batch in one transaction (docs/storage.md) and reports what was stored
and what was rejected (docs/accounting.md, "Rejected readings"); a failure raises, and
the caller keeps the batch for its next attempt (an MQTT message stays unacknowledged).
Rejections are counted per device since start for /healthz and logged, at most once a
minute per device, with the reason: a device whose every reading is refused must not
go unnoticed (docs/operations.md, "Health").
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from heliod.adapters.store import Store
from heliod.adapters.store.store import Rejected
from heliod.rewards.ingest import Rejection
from heliod.rewards.readings import Reading
from heliod.rewards.times import rfc3339

log = logging.getLogger("heliod.intake")

LOG_EVERY_US = 60_000_000  # a device's rejections are logged at most once a minute


class IngestReport(Protocol):
    """Told what each committed batch did (the metrics and the watchdog)."""

    def committed(self) -> None:
        """A batch was committed: the store makes progress."""

    def stored(self, device: str, count: int) -> None:
        """`count` readings of `device` were stored."""

    def rejected(self, device: str, reason: str) -> None:
        """One reading of `device` was rejected for `reason`."""


def why(item: Rejected) -> str:
    """A rejection in a sentence's words."""
    at = rfc3339(item.ts_us)
    if item.reason == Rejection.NOT_AFTER_LAST and item.last_ts_us is not None:
        last = rfc3339(item.last_ts_us)
        return f"its time {at} is not after the device's last reading, at {last}"
    if item.reason == Rejection.IN_FUTURE:
        return f"its time {at} is more than 5 minutes ahead of this gateway's clock"
    return f"{item.reason} (reading at {at})"


@dataclass(slots=True)
class _Device:
    count: int = 0
    last: Rejected | None = None
    at_us: int = 0  # when the last one was rejected, on the daemon's clock
    logged_us: int | None = None
    unlogged: int = 0


class Rejections:
    """Rejected readings per device since start, with the last reason and time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}

    def add(self, items: list[Rejected], now_us: int) -> None:
        """Count a batch's rejections; log each device's at most once a minute."""
        lines: list[tuple[str, int, Rejected]] = []
        with self._lock:
            for item in items:
                d = self._devices.setdefault(item.device, _Device())
                d.count += 1
                d.unlogged += 1
                d.last, d.at_us = item, now_us
            for device in sorted({i.device for i in items}):
                d = self._devices[device]
                if d.last is not None and (
                    d.logged_us is None or now_us - d.logged_us >= LOG_EVERY_US
                ):
                    lines.append((device, d.unlogged, d.last))
                    d.logged_us, d.unlogged = now_us, 0
        for device, count, last in lines:
            log.warning(
                "%s: %s rejected, never accounted; the last: %s",
                device,
                "1 reading" if count == 1 else f"{count} readings",
                why(last),
            )

    def view(self) -> dict[str, dict[str, Any]]:
        """device -> {"rejected": N, "last_rejection": {"reason", "at"}} (for /healthz)."""
        with self._lock:
            return {
                device: {
                    "rejected": d.count,
                    "last_rejection": None
                    if d.last is None
                    else {"reason": d.last.reason, "at": rfc3339(d.at_us), "at_us": d.at_us},
                }
                for device, d in self._devices.items()
            }


class Ingest:
    """Stores batches of readings; `ingest(readings)` is the intake's sink."""

    def __init__(
        self,
        store: Store,
        clock_us: Callable[[], int],
        report: IngestReport,
        rejections: Rejections | None = None,
    ) -> None:
        self._store = store
        self._clock_us = clock_us
        self._report = report
        self.rejections = rejections or Rejections()

    def ingest(self, readings: list[Reading]) -> None:
        """One committed batch, or an exception (nothing stored)."""
        now = self._clock_us()
        result = self._store.ingest(readings, now)
        self._report.committed()
        stored = Counter(r.device for r in readings)
        for item in result.rejected:
            stored[item.device] -= 1
            self._report.rejected(item.device, item.reason)
        if result.rejected:
            self.rejections.add(result.rejected, now)
        for device, count in stored.items():
            if count:
                self._report.stored(device, count)
