"""The /healthz report (docs/operations.md, "Health"): facts from the parts, judged in one place.

`Health.facts()` gathers what the running parts and one read of the store know: each
device's state, last reading and rejections, the store's failed writes and free space,
the jobs' failures in a row, the plants that minted with no backer in force, the push
and export backlogs. `assemble` (read/health_report.py) judges them, and `report`
answers 503 only when the store cannot be read. A device is judged by the one freshness
rule (rewards/freshness.py) and the one clock rule (rewards/clocks.py); a part that reads
it may say it is in error. `watch()`, run by the daemon every few seconds, logs a device
whose clock is ahead at most once a minute.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.daemon.read.health_report import assemble
from heliod.rewards.clocks import is_ahead
from heliod.rewards.freshness import DeviceState, is_stale
from heliod.rewards.times import rfc3339, to_us

__all__ = ["Facts", "Health", "WatchedDevice", "assemble", "report"]

log = logging.getLogger("heliod.health")

CLOCK_LOG_EVERY_US = 60_000_000  # a device's clock error is logged at most once a minute


class DeviceStatus(Protocol):
    """What a part knows of a device it reads (the Modbus poller's DeviceHealth fits)."""

    @property
    def state(self) -> str: ...
    @property
    def last_reading_at(self) -> datetime | None: ...


DeviceSource = Callable[[], Mapping[str, DeviceStatus]]
Counts = Callable[[], Mapping[str, int]]
Facts = Callable[[], Mapping[str, Any]]
Views = Callable[[], Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class WatchedDevice:
    """A configured device and the time between its readings, in the daemon clock's µs."""

    id: str
    interval_us: int


def report(facts: Facts) -> tuple[int, dict[str, Any]]:
    """(200, body) normally; (503, a degraded body) when the store cannot be read: what
    the running parts know of their devices is still said."""
    try:
        found = facts()
    except Exception as exc:
        log.warning("healthz: the store cannot be read: %s", exc)
        return 503, assemble({"store": {"failing": True, "last_error": f"cannot be read: {exc}"}})
    return (503 if found.get("store_unreadable") else 200), assemble(found)


def _interval(us: int) -> str:
    seconds = us / 1_000_000
    return f"{seconds:g} s"


class Health:
    """Gathers the facts of /healthz from the running parts and the store."""

    def __init__(
        self,
        store: Store,
        devices: Iterable[WatchedDevice],
        clock_us: Callable[[], int],
        *,
        sources: Iterable[DeviceSource] = (),
        sync: Counts | None = None,
        export: Facts | None = None,
        rejections: Views | None = None,  # device -> {"rejected", "last_rejection"}
        jobs: Views | None = None,  # job -> {"failures" (in a row), "last_error"}
        unbacked: Views | None = None,  # plant -> {"mwh_index", "completed_at"}
        register: Views | None = None,  # plant -> the register pull's status ("refusal", …)
    ) -> None:
        self._store = store
        self._devices = list(devices)
        self._clock_us = clock_us
        self._started_us = clock_us()
        self._sources = list(sources)
        self._sync = sync
        self._export = export
        self._rejections = rejections
        self._jobs = jobs
        self._unbacked = unbacked
        self._register = register
        self._clock_logged: dict[str, int] = {}
        self._lock = threading.Lock()

    def now_us(self) -> int:
        """The daemon's clock, the one every device is judged by."""
        return self._clock_us()

    def devices(self) -> dict[str, dict[str, Any]]:
        """Each watched device's state, last reading and rejections; reads the store."""
        with self._store.read() as conn:
            d = t.devices.c
            stored = {
                row.device: int(row.last_ts_us)
                for row in conn.execute(select(d.device, d.last_ts_us))
                if row.last_ts_us is not None
            }
        return self._devices_report(stored)

    def device_states(self) -> dict[str, str]:
        """device -> its state (metrics); the parts' states alone if the store is unreadable."""
        try:
            report = self.devices()
        except Exception as exc:
            log.debug("device states without the store: %s", exc)
            report = self._devices_report({})
        return {d: v["state"] for d, v in report.items()}

    def facts(self) -> dict[str, Any]:
        """Everything `assemble` judges; `store_unreadable` when the store cannot be read
        (the devices are then judged by what their readers report)."""
        writes = self._store.writes.state()
        failing, last_error, unreadable = writes.failing, writes.last_error, False
        try:
            devices = self.devices()
        except Exception as exc:
            log.warning("healthz: the store cannot be read: %s", exc)
            devices = self._devices_report({})
            failing, last_error, unreadable = True, f"cannot be read: {exc}", True
        space = self._store.space()
        return {
            "now": rfc3339(self._clock_us()),
            "devices": devices,
            "store_unreadable": unreadable,
            "store": {
                "failing": failing,
                "last_error": last_error,
                "free_bytes": None if space is None else space.free,
                "total_bytes": None if space is None else space.total,
            },
            "jobs": self._optional(self._jobs),
            "unbacked": self._optional(self._unbacked),
            "register": self._optional(self._register),
            "sync": self._optional(self._sync),
            "export": self._optional(self._export),
        }

    def report(self) -> tuple[int, dict[str, Any]]:
        """The whole /healthz answer: (HTTP status, body)."""
        return report(self.facts)

    def watch(self) -> None:
        """Log each device whose clock is ahead, at most once a minute (a periodic job)."""
        now = self._clock_us()
        for device, v in self.devices().items():
            if v["state"] != "clock":
                self._clock_logged.pop(device, None)
                continue
            with self._lock:
                last = self._clock_logged.get(device)
                if last is not None and now - last < CLOCK_LOG_EVERY_US:
                    continue
                self._clock_logged[device] = now
            log.error(
                "%s: its newest stored reading (%s) is more than 5 minutes ahead of this "
                "gateway's clock (%s): its readings are rejected (%d since start) and its "
                "energy is not accounted. Set the clock right, then run "
                "`heliod readings reset-clock --device %s`",
                device,
                v["newest_stored_at"],
                rfc3339(now),
                v["rejected"],
                device,
            )

    def _devices_report(self, stored: Mapping[str, int]) -> dict[str, dict[str, Any]]:
        live: dict[str, DeviceStatus] = {}
        for source in self._sources:
            try:
                live.update(source())
            except Exception as exc:  # a part that cannot answer leaves its devices to the store
                log.debug("healthz: a device source failed: %s", exc)
        rejections = self._optional(self._rejections)
        now = self._clock_us()
        out: dict[str, dict[str, Any]] = {}
        for device in self._devices:
            status = live.get(device.id)
            newest = stored.get(device.id)
            last = newest
            if status is not None and status.last_reading_at is not None:
                last = max(last or 0, to_us(status.last_reading_at))
            state: DeviceState
            if is_ahead(newest, now):
                state = "clock"
            elif status is not None and status.state == "error":
                state = "error"
            elif is_stale(last if last is not None else self._started_us, now, device.interval_us):
                state = "stale"
            else:
                state = "ok"
            seen = rejections.get(device.id, {})
            out[device.id] = {
                "state": state,
                "last_reading_at": None if last is None else rfc3339(last),
                "rejected": int(seen.get("rejected", 0)),
                "last_rejection": seen.get("last_rejection"),
                "newest_stored_at": None if newest is None else rfc3339(newest),
                "newest_stored_us": newest,
                "interval": _interval(device.interval_us),
            }
        return out

    @staticmethod
    def _optional(source: Callable[[], Mapping[str, Any]] | None) -> dict[str, Any]:
        if source is None:
            return {}
        try:
            return dict(source())
        except Exception as exc:
            log.debug("healthz: a part's figures are unavailable: %s", exc)
            return {}
