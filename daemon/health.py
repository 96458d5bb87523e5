"""The /healthz report (contract §6), from the running parts and one read of the store.

`{"status", "devices": {ID: {"state", "last_reading_at"}}, "sync": {"pending", "rejected"},
"export": {"pending"}}`: `degraded` when a device is not ok or an event is rejected;
a device is `stale` after 3 expected intervals without a reading; HTTP 200 for both,
503 only when the store cannot be read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.rewards.times import rfc3339, to_us

log = logging.getLogger("heliod.health")

State = Literal["ok", "stale", "error"]
STALE_INTERVALS = 3  # contract §6


class DeviceStatus(Protocol):
    """What a part knows of a device it reads (the poller's DeviceHealth fits)."""

    @property
    def state(self) -> str: ...
    @property
    def last_reading_at(self) -> datetime | None: ...


DeviceSource = Callable[[], Mapping[str, DeviceStatus]]
Counts = Callable[[], Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class WatchedDevice:
    """A configured device and the time between its readings, in the daemon clock's µs."""

    id: str
    interval_us: int


class Health:
    """Builds the /healthz body; `report()` gives (HTTP status, body)."""

    def __init__(
        self,
        store: Store,
        devices: Iterable[WatchedDevice],
        clock_us: Callable[[], int],
        *,
        sources: Iterable[DeviceSource] = (),
        sync: Counts | None = None,
        export: Counts | None = None,
    ) -> None:
        self._store = store
        self._devices = list(devices)
        self._clock_us = clock_us
        self._started_us = clock_us()
        self._sources = list(sources)
        self._sync = sync
        self._export = export

    def add_source(self, source: DeviceSource) -> None:
        """Also ask `source` for the state of the devices it reads."""
        self._sources.append(source)

    def device_states(self) -> dict[str, str]:
        """device -> ok|stale|error, without the store's last timestamps (metrics)."""
        return {d: v["state"] for d, v in self._devices_report({}).items()}

    def report(self) -> tuple[int, dict[str, Any]]:
        """(200, body) normally; (503, body) when the store cannot be read."""
        try:
            with self._store.read() as conn:
                d = t.devices.c
                stored = {
                    row.device: row.last_ts_us
                    for row in conn.execute(select(d.device, d.last_ts_us))
                    if row.last_ts_us is not None
                }
        except Exception as exc:
            log.warning("healthz: store unreadable: %s", exc)
            return 503, {
                "status": "degraded",
                "devices": self._devices_report({}),
                "sync": self._counts(self._sync, ("pending", "rejected")),
                "export": self._counts(self._export, ("pending",)),
                "error": "store unreadable",
            }
        devices = self._devices_report(stored)
        sync = self._counts(self._sync, ("pending", "rejected"))
        export = self._counts(self._export, ("pending",))
        degraded = any(v["state"] != "ok" for v in devices.values()) or sync["rejected"] > 0
        return 200, {
            "status": "degraded" if degraded else "ok",
            "devices": devices,
            "sync": sync,
            "export": export,
        }

    def _devices_report(self, stored: Mapping[str, int]) -> dict[str, dict[str, Any]]:
        live: dict[str, DeviceStatus] = {}
        for source in self._sources:
            try:
                live.update(source())
            except Exception as exc:  # a part that cannot answer leaves its devices to the store
                log.debug("healthz: a device source failed: %s", exc)
        now = self._clock_us()
        out: dict[str, dict[str, Any]] = {}
        for device in self._devices:
            status = live.get(device.id)
            last = stored.get(device.id)
            if status is not None and status.last_reading_at is not None:
                last = max(last or 0, to_us(status.last_reading_at))
            since = last if last is not None else self._started_us
            state: State
            if status is not None and status.state == "error":
                state = "error"
            elif now - since >= STALE_INTERVALS * device.interval_us:
                state = "stale"
            else:
                state = "ok"
            out[device.id] = {
                "state": state,
                "last_reading_at": None if last is None else rfc3339(last),
            }
        return out

    @staticmethod
    def _counts(source: Counts | None, keys: tuple[str, ...]) -> dict[str, int]:
        values: Mapping[str, int] = {}
        if source is not None:
            try:
                values = source()
            except Exception as exc:
                log.debug("healthz: counts unavailable: %s", exc)
        return {k: int(values.get(k, 0)) for k in keys}
