"""data.json's goals for the page: impact with its source, milestones, challenges, banner."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.settings import all_goals, plant_books
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.config import load_config
from heliod.daemon.jobs.accountant import Accountant
from heliod.rewards.readings import Reading
from heliod.rewards.times import from_us, rfc3339
from tests.daemon.http.dashboard.conftest import (
    CONFIG,
    TOKEN,
    TZ,
    Clock,
    Plant,
    backers_csv,
    dashboard_app,
    history,
)

GOALS = """
[plants.impact]
co2_g_per_kwh = "56"
source = "ADEME Base Carbone, mix moyen"

[[plants.milestones]]
mwh = 1

[[plants.milestones]]
mwh = 5

[[plants.milestones]]
mwh = 7
title = "Sept MWh"

[[plants.milestones]]
mwh = 10

[[plants.challenges]]
id = "eight"
title = "8 MWh: the school gets a bench"
goal_mwh = 8
deadline = "2030-01-01T00:00:00"
sponsor = "Mairie"

[[plants.challenges]]
id = "twenty"
title = "20 MWh by June"
goal_mwh = 20
deadline = "2024-06-01T00:00:00"
sponsor = "Région"
"""


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    """The dashboard's fixture plant (a month of sun, > 8 MWh) with goals and impact."""
    path = tmp_path / "heliod.toml"
    sha = hashlib.sha256(TOKEN.encode()).hexdigest()
    path.write_text(CONFIG.format(sha=sha, public="true") + GOALS, encoding="utf-8")
    config = load_config(path, env={})
    store = Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")
    clock = Clock()
    with store.write() as conn:
        apply_rows(conn, "brassemonte", parse_register(backers_csv(), TZ), clock())
    rows = history()
    store.ingest(
        [Reading("inv1", ts, {"energy_wh": e, "power_w": p}) for ts, e, p in rows], clock()
    )
    Accountant(store, plant_books(config), clock, goals=all_goals(config)).run()
    yield Plant(store, config, clock, rows)
    store.close()


def data(plant: Plant) -> dict[str, Any]:
    """The plant's block of data.json."""
    with TestClient(dashboard_app(plant)) as client:
        body: dict[str, Any] = client.get("/dashboard/data.json").json()
    return dict(body["plants"][0])


def test_goals_and_impact_for_the_page(plant: Plant) -> None:
    with plant.store.read() as conn:
        at = {m.mwh_index: m.completed_at_us for m in repo.mint_records(conn, "brassemonte")}
    p = data(plant)
    energy = Decimal(p["energy_wh"])
    assert p["mwh_completed"] == 8
    co2 = (energy / 1000 * 56 / 1000).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
    assert p["impact"] == {
        "co2_avoided_kg": str(co2),
        "households": None,
        "co2_g_per_kwh": "56",
        "source": "ADEME Base Carbone, mix moyen",
    }
    assert p["milestones"] == [
        {"mwh": 1, "title": "1 MWh", "reached_at": rfc3339(at[1])},
        {"mwh": 5, "title": "5 MWh", "reached_at": rfc3339(at[5])},
        {"mwh": 7, "title": "Sept MWh", "reached_at": rfc3339(at[7])},
        {"mwh": 10, "title": "10 MWh", "reached_at": None},
    ]
    progress = (energy / 10_000_000).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
    assert p["next_milestone"] == {"mwh": 10, "title": "10 MWh", "progress": str(progress)}
    eight, twenty = p["challenges"]
    assert (eight["status"], eight["progress"], eight["at"]) == (
        "reached",
        "1.0000",
        rfc3339(at[8]),
    )
    assert (twenty["status"], twenty["progress"], twenty["at"]) == (
        "missed",
        "0.4000",
        "2024-05-31T22:00:00Z",
    )
    assert eight["sponsor"] == "Mairie"
    alice = next(b for b in p["balances"] if b["backer"] == "alice")
    # alice's units stand for units / U MWh, × 56 kg/MWh
    share = Decimal(alice["units"]) / (10 * 10**8) * 56
    assert alice["co2_avoided_kg"] == str(share.quantize(Decimal("0.001"), ROUND_HALF_EVEN))


def test_a_banner_for_24_hours_after_a_goal_is_reached(plant: Plant) -> None:
    with plant.store.read() as conn:
        at = {m.mwh_index: m.completed_at_us for m in repo.mint_records(conn, "brassemonte")}
    # Today's MWh 8 reached the challenge; MWh 7 (yesterday) is older: the challenge shows.
    assert from_us(at[8]).astimezone(TZ).date() == plant.clock.now.date()
    assert data(plant)["banner"] == {
        "kind": "challenge",
        "id": "brassemonte:challenge:eight",
        "title": "8 MWh: the school gets a bench",
        "at": rfc3339(at[8]),
        "until": rfc3339(at[8] + 24 * 3600 * 10**6),
        "goal_mwh": 8,
        "sponsor": "Mairie",
    }
    plant.clock.now = from_us(at[8] + 24 * 3600 * 10**6) - timedelta(microseconds=1)
    assert data(plant)["banner"] is not None  # still within the 24 h
    plant.clock.now = from_us(at[8] + 24 * 3600 * 10**6)
    assert data(plant)["banner"] is None  # a missed challenge is never a banner
