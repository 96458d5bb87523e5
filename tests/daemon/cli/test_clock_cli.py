"""`readings reset-clock`, run as a user runs it, after backfilling under a clock ten years ahead.

Readings imported under `faketime -f +3650d` (Debian's faketime) are stored: they are not
ahead of the clock that judges them. With the right clock, the device's next readings
are rejected as not after the last one, until the reset decision lets them in; the
energy its counter carried meanwhile is then credited (docs/accounting.md, "Clocks").
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers_cli import HELIOD, heliod, heliod_json, readings_csv, write_config
from tests.support import require_binary

NOW = datetime.now(UTC).replace(microsecond=0)
AHEAD = NOW + timedelta(days=3650)


def at(base: datetime, minutes: int) -> str:
    return (base + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def under_faketime(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`faketime -f +3650d heliod ...`: the gateway's clock ten years ahead."""
    cmd = [require_binary("faketime"), "-f", "+3650d", *HELIOD, "-c", str(config), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def cfg(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path, db_url, decimals=0, tokens="1")


def test_clock_reset_lets_the_device_in_and_credits_the_carried_energy(
    cfg: Path, tmp_path: Path
) -> None:
    (tmp_path / "b.csv").write_text("backer,amount\nann,1\n")
    assert (
        heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv")).returncode == 0
    )
    # 300 readings a minute apart, 4 kWh each (250 kW × 1.2 allows 5 kWh a minute),
    # stamped by the clock ten years ahead: 1.196 MWh; MWh 1 completes in 2036.
    ahead = readings_csv(
        tmp_path / "a.csv", [(at(AHEAD, i - 400), str(4000 * i)) for i in range(300)]
    )
    proc = under_faketime(cfg, "readings", "import", "--device", "inv1", str(ahead))
    assert proc.returncode == 0, proc.stderr
    assert "300 stored" in proc.stdout
    assert [m["mwh_index"] for m in heliod_json(cfg, "account")["mints"]] == [1]

    # The right clock: the counter went on (5 minutes of downtime, then 10 readings).
    right = readings_csv(
        tmp_path / "b1.csv", [(at(NOW, i - 30), str(4000 * (305 + i))) for i in range(10)]
    )
    out = heliod_json(cfg, "readings", "import", "--device", "inv1", str(right))
    assert (out["stored"], out["rejected_by_reason"]) == (0, {"timestamp_not_after_last": 10})

    # No terminal, no --yes: nothing recorded.
    proc = heliod(cfg, "readings", "reset-clock", "--device", "inv1")
    assert proc.returncode == 2
    assert "pass --yes" in proc.stderr
    assert "days ahead of this gateway's clock" in proc.stdout
    assert "newest rejected reading: 1256000.000 Wh" in proc.stdout
    proc = heliod(cfg, "readings", "reset-clock", "--device", "inv1", "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    reset = json.loads(proc.stdout, parse_float=Decimal)
    assert reset["device"] == "inv1"
    assert reset["position"] == 300  # the device's last stored reading
    assert reset["seen"] == {"value_wh": Decimal("1256000.000"), "at": at(NOW, -21)}
    # Once reset, the device's clock is not ahead any more: a second reset is refused.
    again = heliod(cfg, "readings", "reset-clock", "--device", "inv1", "--yes")
    assert again.returncode == 2
    assert "needs no reset" in again.stderr

    after = readings_csv(
        tmp_path / "c.csv", [(at(NOW, i - 20), str(4000 * (315 + i))) for i in range(10)]
    )
    out = heliod_json(cfg, "readings", "import", "--device", "inv1", str(after))
    assert (out["stored"], out["rejected"]) == (10, 0)
    assert heliod_json(cfg, "account")["anomalies"] == 0
    # E runs from the baseline (0) to the last confirmed reading, 4 kWh × 323: nothing
    # the counter carried while its readings were rejected is lost.
    plants = heliod_json(cfg, "balances")
    assert plants[0]["balances"] == [{"backer": "ann", "units": 1, "amount": "1"}]
    # (Listed by timestamp: the readings stamped ten years ahead come after these.)
    listing = heliod_json(
        cfg, "readings", "list", "--device", "inv1", "--from", at(NOW, -13), "--to", at(NOW, 0)
    )
    assert [r["status"] for r in listing["readings"]] == ["final", "final", "pending"]
    verify = heliod(cfg, "ledger", "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    summary = json.loads(verify.stdout, parse_float=Decimal)
    assert summary["plants"]["p1"]["energy_wh"] == Decimal("1292000.000")


def test_reset_clock_refuses_what_it_cannot_do(cfg: Path) -> None:
    unknown = heliod(cfg, "readings", "reset-clock", "--device", "nope", "--yes")
    assert unknown.returncode == 2
    assert "unknown device 'nope'" in unknown.stderr
    nothing = heliod(cfg, "readings", "reset-clock", "--device", "inv1", "--yes")
    assert nothing.returncode == 2
    assert "no stored reading" in nothing.stderr


def test_a_device_whose_clock_is_right_needs_no_reset(cfg: Path, tmp_path: Path) -> None:
    rows = readings_csv(tmp_path / "r.csv", [(at(NOW, i - 10), str(4000 * i)) for i in range(5)])
    assert heliod(cfg, "readings", "import", "--device", "inv1", str(rows)).returncode == 0
    proc = heliod(cfg, "readings", "reset-clock", "--device", "inv1", "--yes")
    assert proc.returncode == 2
    assert "not more than 5 minutes ahead" in proc.stderr


def test_a_rejected_reading_below_the_last_accounted_one_is_shown_as_not_used(
    cfg: Path, tmp_path: Path
) -> None:
    # V counts only when F ≤ V ≤ P (docs/accounting.md, "Clocks"): the operator is told.
    ahead = readings_csv(
        tmp_path / "a.csv", [(at(AHEAD, i - 400), str(4000 * i + 100_000)) for i in range(10)]
    )
    proc = under_faketime(cfg, "readings", "import", "--device", "inv1", str(ahead))
    assert proc.returncode == 0, proc.stderr
    assert heliod(cfg, "account").returncode == 0
    low = readings_csv(tmp_path / "b.csv", [(at(NOW, -5), "5000")])  # the counter restarted
    out = heliod_json(cfg, "readings", "import", "--device", "inv1", str(low))
    assert out["rejected_by_reason"] == {"timestamp_not_after_last": 1}
    proc = heliod(cfg, "readings", "reset-clock", "--device", "inv1")
    assert proc.returncode == 2
    assert "newest rejected reading: 5000.000 Wh" in proc.stdout
    assert "It is below the last accounted reading (132000.000 Wh), so it is not used" in (
        proc.stdout
    )
