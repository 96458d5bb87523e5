"""Review: /healthz when the store cannot be read still says what the parts know.

Before the move into rooms (eb92026 daemon/health.py), the 503 body carried every
configured device with the state its reader reported (a poller that cannot reach an
inverter says `error`); `report` now answers `assemble({})`, a body with no device at all,
exactly when an operator most needs to see which parts still work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from heliod.daemon.read.deliveries import sync_counts
from heliod.daemon.read.health import Health, WatchedDevice
from tests.daemon.ledger_fixture import make_ledger, now_us

DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Status:
    """What the Modbus poller reports of a device (its DeviceHealth's two fields)."""

    state: str
    last_reading_at: datetime | None = None


def test_a_503_still_lists_every_device_with_its_state(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path)
    health = Health(
        ledger.store,
        [WatchedDevice("inv1", DAY_US), WatchedDevice("inv2", DAY_US)],
        now_us,
        sources=[lambda: {"inv1": Status("error")}],
        sync=lambda: sync_counts(ledger.store),
    )
    status, body = health.report()
    assert status == 200
    assert {d: v["state"] for d, v in body["devices"].items()} == {"inv1": "error", "inv2": "ok"}
    ledger.store.close()
    db = tmp_path / "heliod.db"
    db.rename(tmp_path / "moved.db")
    db.mkdir()  # SQLite cannot open a directory: the store is unreadable
    status, body = health.report()
    assert status == 503
    assert body["status"] == "degraded"
    assert {d: v["state"] for d, v in body["devices"].items()} == {"inv1": "error", "inv2": "ok"}
