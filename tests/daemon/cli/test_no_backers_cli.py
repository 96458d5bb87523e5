"""`account` before `backers import`: the MWh go to undistributed for good, and heliod says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.helpers_cli import heliod, heliod_json, readings_csv, write_config

T0 = datetime(2021, 6, 1, 8, 0, tzinfo=UTC)


def test_account_warns_naming_the_plant_when_no_backer_is_in_force(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'state' / 'heliod.db'}", decimals=0)
    # 4 kWh a minute: MWh 1 and 2 complete within 502 readings.
    rows = [
        ((T0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), str(4000 * i))
        for i in range(502)
    ]
    assert (
        heliod(
            cfg,
            "readings",
            "import",
            "--device",
            "inv1",
            str(readings_csv(tmp_path / "r.csv", rows)),
        ).returncode
        == 0
    )
    proc = heliod(cfg, "account")
    assert proc.returncode == 0, proc.stderr
    assert (
        "WARNING heliod.accountant: p1 minted MWh 1..2 with no backer in force: all their "
        "units stay undistributed for good. Import the share register (heliod backers "
        "import) before accounting; later mints use it"
    ) in proc.stderr
    assert heliod_json(cfg, "balances")[0]["undistributed"]["units"] == 2
