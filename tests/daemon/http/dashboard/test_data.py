"""data.json against what the fixture fed the real store and accountant, and its access rule."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from heliod.daemon.boot.settings import http_settings
from heliod.daemon.http.auth import bearer_auth
from heliod.daemon.http.dashboard import dashboard_router
from heliod.daemon.read.health import Health, WatchedDevice
from heliod.rewards.times import rfc3339, to_us
from tests.daemon.http.dashboard.conftest import (
    START,
    TOKEN,
    TZ,
    UNITS_PER_MWH,
    Plant,
    dashboard_app,
)


def _data(plant: Plant, headers: dict[str, str] | None = None) -> httpx.Response:
    with TestClient(dashboard_app(plant)) as client:
        response: httpx.Response = client.get("/dashboard/data.json", headers=headers or {})
    return response


def test_numbers_are_the_ledger_s(public_plant: Plant) -> None:
    response = _data(public_plant)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["generated_at"] == rfc3339(to_us(START))
    [p] = body["plants"]
    energy = sum((d for _, d in public_plant.accepted_deltas()), Decimal(0))
    completed = int(energy // 1_000_000)
    assert completed >= 8  # the fixture holds more than 8 MWh
    assert p["energy_wh"] == str(energy.quantize(Decimal("0.001")))
    assert p["mwh_completed"] == completed
    assert Decimal(p["next_mwh_progress"]) == (energy - completed * 1_000_000) / 1_000_000
    assert p["minted"] == {
        "units": completed * UNITS_PER_MWH,
        "amount": f"{completed * 10}.00000000",
        "symbol": "SLR",
        "decimals": 8,
    }
    assert (p["timezone"], p["name"], p["capacity_kw"]) == (
        "Europe/Paris",
        "Centrale de Brassemonte",
        "2000.0",
    )
    # Conservation (docs/accounting.md): what the backers hold plus the undistributed is what was minted.
    held = sum(b["units"] for b in p["balances"])
    assert held + p["undistributed"]["units"] == p["minted"]["units"]
    assert len(p["balances"]) == 63
    alice = next(b for b in p["balances"] if b["backer"] == "alice")
    assert alice["units"] > 0
    assert alice["amount"] == f"{alice['units'] // 10**8}.{alice['units'] % 10**8:08d}"


def test_days_and_today_curve_follow_local_time(public_plant: Plant) -> None:
    p = _data(public_plant).json()["plants"][0]
    per_day: dict[str, Decimal] = defaultdict(Decimal)
    for ts, delta in public_plant.accepted_deltas():
        per_day[ts.astimezone(TZ).date().isoformat()] += delta
    days = p["energy_days"]
    assert len(days) == 30
    assert days[-1]["date"] == START.date().isoformat()
    assert days[0]["date"] == (START.date() - timedelta(days=29)).isoformat()
    assert {d["date"]: Decimal(d["energy_wh"]) for d in days if Decimal(d["energy_wh"])} == dict(
        per_day
    )
    # 2024-06-14 00:00 in Paris is 22:00 UTC the day before.
    assert days[-2]["t"] == "2024-06-13T22:00:00Z"
    today = p["power_today"]
    assert today["from"] == "2024-06-14T22:00:00Z"
    assert today["to"] == "2024-06-15T22:00:00Z"
    fed = [
        (rfc3339(to_us(ts)), str(power))
        for ts, _, power in public_plant.readings
        if ts.date() == START.date()
    ]
    assert [(x["t"], x["power_w"]) for x in today["points"]] == fed
    assert len(today["points"]) <= 300


def test_device_health_without_a_provider(public_plant: Plant) -> None:
    devices = _data(public_plant).json()["plants"][0]["devices"]
    # inv1 read 2 minutes ago (poll 10m): ok; inv2 never read: stale.
    assert devices == {
        "inv1": {"state": "ok", "last_reading_at": "2024-06-15T12:00:00Z"},
        "inv2": {"state": "stale", "last_reading_at": None},
    }


def test_private_dashboard_needs_a_token(private_plant: Plant) -> None:
    assert _data(private_plant).status_code == 401
    wrong = _data(private_plant, {"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert _data(private_plant, {"Authorization": f"Basic {TOKEN}"}).status_code == 401
    ok = _data(private_plant, {"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert ok.json()["plants"][0]["id"] == "brassemonte"
    with TestClient(dashboard_app(private_plant)) as client:
        page = client.get("/")  # the page itself holds no data: it asks for the token
        assert page.status_code == 200
        assert 'content="false"' in page.text
        assert client.get("/dashboard/static/app.js").status_code == 200
        assert client.get("/dashboard/static/../data.py").status_code == 404


def test_public_page_and_assets(public_plant: Plant) -> None:
    with TestClient(dashboard_app(public_plant)) as client:
        page = client.get("/")
        assert 'content="true"' in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        js = client.get("/dashboard/static/vendor/uplot.iife.min.js")
        assert js.status_code == 200
        assert js.headers["content-type"].startswith("text/javascript")
        assert client.get("/dashboard/static/vendor/LICENSE").text.startswith("The MIT License")
        assert client.get("/dashboard/static/nope.js").status_code == 404


def test_device_health_comes_from_the_daemon_s_health(public_plant: Plant) -> None:
    @dataclass
    class Live:
        state: str
        last_reading_at: datetime | None

    health = Health(
        public_plant.store,
        [WatchedDevice("inv1", 600_000_000), WatchedDevice("inv2", 10_000_000)],
        public_plant.clock,
        sources=[lambda: {"inv2": Live("error", None)}],
    )
    app = FastAPI()
    app.include_router(
        dashboard_router(
            public_plant.store,
            http_settings(public_plant.config),
            bearer_auth(public_plant.config.api.tokens),
            lambda: health.report()[1],
            clock_us=public_plant.clock,
        )
    )
    with TestClient(app) as client:
        devices = client.get("/dashboard/data.json").json()["plants"][0]["devices"]
    assert devices == {
        "inv1": {"state": "ok", "last_reading_at": "2024-06-15T12:00:00Z"},
        "inv2": {"state": "error", "last_reading_at": None},
    }
