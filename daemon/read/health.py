"""The /healthz report (docs/operations.md, "Health"): facts from the parts, judged in one place.

`Health.facts()` gathers what the running parts and one read of the store know: each
device's state and last reading, the push backlog, the export backlog, how the register
pulls went. `assemble` judges them (`degraded` when a device is not ok, an event is
rejected or a register answer was refused; `reasons` says why in sentences), and `report`
answers 503 only when the store cannot be read. A device is judged by the one freshness rule
(rewards/freshness.py); a part that reads it may say it is in error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.rewards.freshness import DEVICE_STATES, DeviceState, is_stale
from heliod.rewards.times import rfc3339, to_us

log = logging.getLogger("heliod.health")


class DeviceStatus(Protocol):
    """What a part knows of a device it reads (the Modbus poller's DeviceHealth fits)."""

    @property
    def state(self) -> str: ...
    @property
    def last_reading_at(self) -> datetime | None: ...


DeviceSource = Callable[[], Mapping[str, DeviceStatus]]
Counts = Callable[[], Mapping[str, int]]
Facts = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class WatchedDevice:
    """A configured device and the time between its readings, in the daemon clock's µs."""

    id: str
    interval_us: int


def register_reasons(register: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A sentence per plant whose last register answer was refused (none applied since)."""
    return [
        f"the platform's share register answer for plant {plant} was refused: {s['refusal']}"
        for plant, s in sorted(register.items())
        if s.get("refusal")
    ]


def assemble(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The /healthz body of these facts: `status` judged, every device state a known one."""
    devices = {
        str(device): {
            "state": str(v.get("state")) if v.get("state") in DEVICE_STATES else "error",
            "last_reading_at": v.get("last_reading_at"),
        }
        for device, v in dict(facts.get("devices", {})).items()
    }
    sync = facts.get("sync", {})
    rejected = int(sync.get("rejected", 0))
    export = dict(facts.get("export", {}))
    export["pending"] = int(export.get("pending", 0))
    reasons = register_reasons(facts.get("register", {}))
    degraded = rejected > 0 or any(d["state"] != "ok" for d in devices.values()) or bool(reasons)
    return {
        "status": "degraded" if degraded else "ok",
        "reasons": reasons,
        "devices": devices,
        "sync": {"pending": int(sync.get("pending", 0)), "rejected": rejected},
        "export": export,
    }


def report(facts: Facts) -> tuple[int, dict[str, Any]]:
    """(200, body) normally; (503, a degraded body) when the store cannot be read: what
    the running parts know of their devices is still said."""
    try:
        found = facts()
    except Exception as exc:
        log.warning("healthz: the store cannot be read: %s", exc)
        return 503, assemble({}) | {"status": "degraded"}
    if found.get("store_unreadable"):
        return 503, assemble(found) | {"status": "degraded"}
    return 200, assemble(found)


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
        register: Facts | None = None,
    ) -> None:
        self._store = store
        self._devices = list(devices)
        self._clock_us = clock_us
        self._started_us = clock_us()
        self._sources = list(sources)
        self._sync = sync
        self._export = export
        self._register = register

    def device_states(self) -> dict[str, str]:
        """device -> its state, without the store's last timestamps (metrics)."""
        return {d: v["state"] for d, v in self._devices_report({}).items()}

    def facts(self) -> dict[str, Any]:
        """Devices, backlogs, register pulls; `store_unreadable` when the store cannot be
        read (the devices are then judged by what their readers report)."""
        unreadable = False
        try:
            with self._store.read() as conn:
                d = t.devices.c
                stored = {
                    row.device: row.last_ts_us
                    for row in conn.execute(select(d.device, d.last_ts_us))
                    if row.last_ts_us is not None
                }
        except Exception as exc:
            log.warning("healthz: the store cannot be read: %s", exc)
            stored, unreadable = {}, True
        return {
            "devices": self._devices_report(stored),
            "sync": self._optional(self._sync),
            "export": self._optional(self._export),
            "register": self._optional(self._register),
            "store_unreadable": unreadable,
        }

    def report(self) -> tuple[int, dict[str, Any]]:
        """The whole /healthz answer: (HTTP status, body)."""
        return report(self.facts)

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
            state: DeviceState
            if status is not None and status.state == "error":
                state = "error"
            elif is_stale(last if last is not None else self._started_us, now, device.interval_us):
                state = "stale"
            else:
                state = "ok"
            out[device.id] = {
                "state": state,
                "last_reading_at": None if last is None else rfc3339(last),
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
