"""GET /healthz and GET /metrics: the documented shape, degraded states, 503 only without a store."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from heliod.adapters.store import schema as t
from heliod.daemon.boot.metrics import Metrics
from heliod.daemon.boot.settings import http_settings
from heliod.daemon.http.api import create_app
from heliod.daemon.read.deliveries import sync_counts
from heliod.daemon.read.health import Health, WatchedDevice
from tests.daemon.http.api.conftest import Provider, build_app
from tests.daemon.ledger_fixture import Ledger, make_ledger, now_us


def test_shape_and_degraded_states(ledger: Ledger) -> None:
    provider = Provider(ledger)
    with TestClient(build_app(ledger, provider)) as client:
        response = client.get("/healthz")
        assert response.status_code == 200
        # Five mints, none delivered yet: all pending.
        assert response.json() == {
            "status": "ok",
            "reasons": [],
            "devices": {
                "inv1": {
                    "state": "ok",
                    "last_reading_at": "2024-03-01T01:00:00Z",
                    "rejected": 0,
                    "last_rejection": None,
                },
                "inv2": {
                    "state": "ok",
                    "last_reading_at": None,
                    "rejected": 0,
                    "last_rejection": None,
                },
            },
            "store": {"state": "ok", "free_bytes": None, "last_error": None},
            "jobs": {},
            "sync": {"pending": 5, "rejected": 0},
            "export": {"pending": 0},
        }
        provider.devices["inv2"]["state"] = "stale"
        body = client.get("/healthz").json()
        assert (body["status"], body["devices"]["inv2"]["state"]) == ("degraded", "stale")
        assert body["reasons"] == [
            "Device inv2: no reading since the daemon's start (3 intervals or more)."
        ]
        provider.devices["inv2"]["state"] = "ok"
        with ledger.store.write() as conn:
            conn.execute(
                insert(t.deliveries).values(
                    plant="beta",
                    mwh_index=1,
                    status="rejected",
                    attempts=1,
                    next_attempt_us=0,
                    last_status=422,
                    updated_us=now_us(),
                )
            )
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json()["status"] == "degraded"
        assert response.json()["sync"] == {"pending": 4, "rejected": 1}
        assert response.json()["reasons"] == [
            "The platform refused 1 push event, parked: `heliod sync status` lists "
            "them, `heliod sync retry` sends them again."
        ]


def test_503_only_when_the_store_cannot_be_read(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path)
    with TestClient(build_app(ledger)) as client:
        assert client.get("/healthz").status_code == 200
        ledger.store.close()
        db = tmp_path / "heliod.db"
        db.rename(tmp_path / "moved.db")
        db.mkdir()  # SQLite cannot open a directory: the store is unreadable
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "degraded"
        assert response.json()["store"]["state"] == "error"
        assert response.json()["reasons"][0].startswith("The store failed to write: cannot be read")
        assert client.get("/metrics").status_code == 200  # metrics still answer


def test_with_the_daemon_s_health_and_metrics(ledger: Ledger) -> None:
    """The runtime's Health and Metrics plug straight in."""
    health = Health(
        ledger.store,
        [WatchedDevice("inv1", 10_000_000), WatchedDevice("inv2", 10_000_000)],
        now_us,
        sync=lambda: sync_counts(ledger.store),
    )
    metrics = Metrics()
    app = create_app(ledger.store, http_settings(ledger.config), health.facts, metrics.registry)
    with TestClient(app) as client:
        body = client.get("/healthz").json()
        # The readings are from 2024: both devices are stale now.
        assert body["status"] == "degraded"
        assert body["devices"]["inv1"] == {
            "state": "stale",
            "last_reading_at": "2024-03-01T03:10:00Z",
            "rejected": 0,
            "last_rejection": None,
        }
        assert body["store"]["state"] == "ok"
        assert body["store"]["free_bytes"] > 0  # the embedded store's file system
        assert body["sync"] == {"pending": 5, "rejected": 0}
        text = client.get("/metrics")
        assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "heliod_watchdog_pings_total" in text.text
