"""`heliod milestones`, the backers' CO2 in `balances`, and `ledger verify` over goal events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.helpers_cli import heliod, heliod_json, readings_csv, write_config

T0 = datetime(2021, 6, 1, 8, 0, tzinfo=UTC)
GOALS = """
[plants.impact]
co2_g_per_kwh = 56
source = "ADEME Base Carbone, mix moyen"

[[plants.milestones]]
mwh = 1

[[plants.milestones]]
mwh = 5
title = "Cinq MWh"

[[plants.challenges]]
id = "five"
title = "5 MWh: a bench"
goal_mwh = 5
deadline = "2030-01-01T00:00:00"
sponsor = "Mairie"

[[plants.challenges]]
id = "hundred"
title = "100 MWh by 11:00"
goal_mwh = 100
deadline = 2021-06-01T11:00:00
sponsor = "Région"
"""


def ts(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def cfg(tmp_path: Path, db_url: str) -> Path:
    """p1 with goals and impact, three equal backers, 7 MWh accounted (U = 1)."""
    path = write_config(tmp_path, db_url, decimals=0, tokens="1")
    path.write_text(path.read_text() + GOALS)
    (tmp_path / "b.csv").write_text("backer,amount\na,100\nb,100\nc,100\n")
    assert (
        heliod(path, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv")).returncode == 0
    )
    readings_csv(tmp_path / "r.csv", [(ts(i), str(4000 * i)) for i in range(1752)])
    assert (
        heliod(path, "readings", "import", "--device", "inv1", str(tmp_path / "r.csv")).returncode
        == 0
    )
    assert len(heliod_json(path, "account")["mints"]) == 7
    return path


def test_milestones_lists_each_goal_with_its_status(cfg: Path) -> None:
    [p1] = heliod_json(cfg, "milestones")
    mints = {
        m["mwh_index"]: m["completed_at"] for m in heliod_json(cfg, "ledger", "export")["mints"]
    }
    assert p1["plant"] == "p1"
    assert p1["milestones"] == [
        {"mwh": 1, "title": "1 MWh", "reached_at": mints[1]},
        {"mwh": 5, "title": "Cinq MWh", "reached_at": mints[5]},
    ]
    five, hundred = p1["challenges"]
    assert (five["status"], five["at"], five["progress"]) == ("reached", mints[5], 1)
    # 11:00 Paris is 09:00 UTC; the readings went on past it, so the run missed it.
    assert (hundred["status"], hundred["at"], hundred["deadline"]) == (
        "missed",
        "2021-06-01T09:00:00Z",
        "2021-06-01T09:00:00Z",
    )
    raw = heliod(cfg, "milestones", "--json").stdout  # exact decimals, as the API writes them
    assert '"progress":0.0700' in raw.replace(" ", "")
    out = heliod(cfg, "milestones", "--plant", "p1")
    assert out.returncode == 0, out.stderr
    assert "Cinq MWh" in out.stdout and "missed" in out.stdout and "7.00 %" in out.stdout
    bad = heliod(cfg, "milestones", "--plant", "nope")
    assert bad.returncode == 2
    assert "unknown plant 'nope'" in bad.stderr


def test_balances_carry_each_backer_s_co2_with_its_source(cfg: Path) -> None:
    [p1] = heliod_json(cfg, "balances")
    # 7 units of U = 1 per MWh: 2 each, one undistributed; 2 MWh × 56 kg/MWh = 112 kg
    assert {b["backer"]: b["co2_avoided_kg"] for b in p1["balances"]} == {
        "a": 112,
        "b": 112,
        "c": 112,
    }
    assert '"co2_avoided_kg":112.000' in heliod(cfg, "balances", "--json").stdout.replace(" ", "")
    assert p1["impact"]["source"] == "ADEME Base Carbone, mix moyen"
    out = heliod(cfg, "balances").stdout
    assert "co2_avoided_kg" in out and "112.000" in out
    assert "p1: CO2 at 56 g/kWh, ADEME Base Carbone, mix moyen" in out


def test_verify_replays_the_goal_events(cfg: Path, db_url: str) -> None:
    assert heliod(cfg, "account").returncode == 0  # again: no event twice
    assert heliod(cfg, "ledger", "verify").returncode == 0
    engine = create_engine(db_url)
    with engine.begin() as conn:
        count = conn.execute(text("SELECT COUNT(*) FROM events")).scalar()
        assert count == 4  # milestones 1 and 5, both challenges
        conn.execute(
            text("UPDATE events SET status = 'missed' WHERE event_id = 'p1:challenge:five'")
        )
    engine.dispose()
    proc = heliod(cfg, "ledger", "verify")
    assert proc.returncode == 1
    assert "goal events differ" in proc.stderr and "p1:challenge:five" in proc.stderr
