"""Impact figures, the backers' CO2 shares and the milestones route, from the real accountant."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from heliod.adapters.store import ledger_repo as repo
from heliod.rewards.times import rfc3339
from tests.daemon.http.api.conftest import build_app
from tests.daemon.http.api.test_routes import error, get
from tests.daemon.ledger_fixture import Ledger, make_ledger

GOALS = """
[plants.impact]
co2_g_per_kwh = "56"
source = "ADEME Base Carbone, mix moyen"
household_kwh_per_year = 4700

[[plants.milestones]]
mwh = 1

[[plants.milestones]]
mwh = 2
title = "Deux MWh"

[[plants.milestones]]
mwh = 5

[[plants.challenges]]
id = "three"
title = "3 MWh: a bench for the school"
goal_mwh = 3
deadline = "2030-01-01T00:00:00"
sponsor = "Mairie"

[[plants.challenges]]
id = "ten"
title = "10 MWh by February"
goal_mwh = 10
deadline = 2024-02-01T00:00:00
sponsor = "Région"
"""


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """Three MWh of alpha (with goals and impact) and two of beta (none)."""
    book = make_ledger(tmp_path, alpha_goals=GOALS)
    book.goals = True
    book.produce("alpha", 3)
    book.produce("beta", 2)
    yield book
    book.store.close()


@pytest.fixture
def client(ledger: Ledger) -> Iterator[TestClient]:
    """An in-process client of the app."""
    with TestClient(build_app(ledger)) as c:
        yield c


def mint_times(ledger: Ledger) -> dict[int, str]:
    """alpha's completion times by MWh number."""
    with ledger.store.read() as conn:
        return {r.mwh_index: rfc3339(r.completed_at_us) for r in repo.mint_records(conn, "alpha")}


def test_impact_of_the_plant_with_its_source(client: TestClient) -> None:
    alpha, beta = get(client, "/plants")
    # E = 3,000 kWh: × 56 g/kWh = 168 kg; / 4,700 kWh = 0.638… → 0.6 households
    assert alpha["energy_wh"] == Decimal("3000000.000")
    assert alpha["impact"] == {
        "co2_avoided_kg": Decimal("168.000"),
        "households": Decimal("0.6"),
        "co2_g_per_kwh": Decimal("56"),
        "source": "ADEME Base Carbone, mix moyen",
    }
    assert beta["impact"] is None


def test_each_backer_s_share_of_the_co2(client: TestClient) -> None:
    alpha = get(client, "/plants/alpha/balances")
    # three equal backers, 3 MWh: 10^8 units each = 1 MWh each × 56 kg/MWh
    assert [(b["backer"], b["co2_avoided_kg"]) for b in alpha["balances"]] == [
        ("alice", Decimal("56.000")),
        ("bob", Decimal("56.000")),
        ("carol", Decimal("56.000")),
    ]
    assert alpha["impact"] == {
        "co2_g_per_kwh": Decimal("56"),
        "source": "ADEME Base Carbone, mix moyen",
    }
    beta = get(client, "/plants/beta/balances")
    assert "impact" not in beta
    assert all("co2_avoided_kg" not in b for b in beta["balances"])


def test_milestones_and_challenges_with_their_status(client: TestClient, ledger: Ledger) -> None:
    at = mint_times(ledger)
    assert get(client, "/plants/alpha/milestones") == {
        "milestones": [
            {"mwh": 1, "title": "1 MWh", "reached_at": at[1]},
            {"mwh": 2, "title": "Deux MWh", "reached_at": at[2]},
            {"mwh": 5, "title": "5 MWh", "reached_at": None},
        ],
        "challenges": [
            {
                "id": "three",
                "title": "3 MWh: a bench for the school",
                "goal_mwh": 3,
                "deadline": "2029-12-31T23:00:00Z",
                "sponsor": "Mairie",
                "status": "reached",
                "progress": Decimal("1.0000"),
                "at": at[3],
            },
            {
                "id": "ten",
                "title": "10 MWh by February",
                "goal_mwh": 10,
                "deadline": "2024-01-31T23:00:00Z",  # the plant's timezone, in UTC
                "sponsor": "Région",
                "status": "missed",  # the first accounting run after the deadline
                "progress": Decimal("0.3000"),
                "at": "2024-01-31T23:00:00Z",
            },
        ],
    }
    beta = get(client, "/plants/beta/milestones")  # the default milestones, no challenge
    assert [m["mwh"] for m in beta["milestones"]] == [1, 10, 100, 1000, 10000]
    assert beta["milestones"][0]["reached_at"] is not None
    assert beta["challenges"] == []
    assert error(client, "/plants/gamma/milestones", 404) == "unknown plant 'gamma'"
