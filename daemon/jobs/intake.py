"""Readings into the store: the sink the Modbus poller and the MQTT subscriber hand batches to.

One call stores one batch in one transaction (docs/storage.md) and reports what was stored
and what was rejected (docs/accounting.md, "Rejected readings"); a failure raises, and
the caller keeps the batch for its next attempt (an MQTT message stays unacknowledged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol

from heliod.adapters.store import Store
from heliod.rewards.readings import Reading


class IngestReport(Protocol):
    """Told what each committed batch did (the metrics and the watchdog)."""

    def committed(self) -> None:
        """A batch was committed: the store makes progress."""

    def stored(self, device: str, count: int) -> None:
        """`count` readings of `device` were stored."""

    def rejected(self, device: str, reason: str) -> None:
        """One reading of `device` was rejected for `reason`."""


class Ingest:
    """Stores batches of readings; `ingest(readings)` is the intake's sink."""

    def __init__(self, store: Store, clock_us: Callable[[], int], report: IngestReport) -> None:
        self._store = store
        self._clock_us = clock_us
        self._report = report

    def ingest(self, readings: list[Reading]) -> None:
        """One committed batch, or an exception (nothing stored)."""
        result = self._store.ingest(readings, self._clock_us())
        self._report.committed()
        stored = Counter(r.device for r in readings)
        for device, reason in result.rejected:
            stored[device] -= 1
            self._report.rejected(device, reason)
        for device, count in stored.items():
            if count:
                self._report.stored(device, count)
