"""Crash safety: SIGKILL `heliod account` at many points; every MWh is minted exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.helpers_cli import HELIOD, heliod, heliod_json, readings_csv, write_config

T0 = datetime(2022, 3, 1, tzinfo=UTC)
READINGS = 40_000  # 10 kWh a minute on a 1 MW plant: one MWh every 100 readings
STEP_WH = 10_000


def _prepare(folder: Path, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = write_config(folder, url, capacity="1000", tokens="1", decimals=8)
    backers = ["backer,amount,valid_from"] + [f"b{i:03d},{1 + i % 7}.{i % 10}," for i in range(60)]
    backers += [f"late{i},3,{(T0 + timedelta(days=10)).isoformat()}" for i in range(5)]
    (folder / "b.csv").write_text("\n".join(backers) + "\n")
    assert heliod(cfg, "backers", "import", "--plant", "p1", str(folder / "b.csv")).returncode == 0
    rows = [
        ((T0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), str(STEP_WH * i))
        for i in range(READINGS)
    ]
    readings_csv(folder / "r.csv", rows)
    proc = heliod(cfg, "readings", "import", "--device", "inv1", str(folder / "r.csv"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return cfg


def _position(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT position FROM positions WHERE consumer = 'accountant'")
        ).scalar()
    return int(value or 0)


@pytest.mark.slow
def test_sigkill_during_account_never_loses_or_doubles_a_mint(tmp_path: Path, db_url: str) -> None:
    crashed = _prepare(tmp_path / "crashed", db_url)
    # Kill on progress, not on time: watch the accountant's committed position and kill
    # once it passes each target, so every kill lands mid-work on a fast or slow machine.
    rng = random.Random(20161201)
    targets = sorted(rng.sample(range(500, READINGS - 500), 8))
    engine = create_engine(db_url)
    kills = 0
    for target in targets:
        if _position(engine) >= target:
            continue
        proc = subprocess.Popen(
            [*HELIOD, "-c", str(crashed), "account", "--batch-size", "100"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and _position(engine) < target < READINGS:
            assert time.monotonic() < deadline, "the accountant made no progress"
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    engine.dispose()
    final = heliod(crashed, "account", "--batch-size", "100", timeout=300)
    assert final.returncode == 0, final.stderr
    assert kills >= 3, "the kills must land while the accountant is working"

    verify = heliod(crashed, "ledger", "verify")
    assert verify.returncode == 0, verify.stderr
    export = heliod_json(crashed, "ledger", "export")
    indexes = [m["mwh_index"] for m in export["mints"]]
    expected_mwh = (READINGS - 2) * STEP_WH // 1_000_000  # the last reading stays pending
    assert indexes == list(range(1, expected_mwh + 1))

    # The same readings accounted without any crash give the same ledger, byte for byte.
    clean_url = f"sqlite:///{tmp_path / 'clean' / 'state' / 'heliod.db'}"
    clean = _prepare(tmp_path / "clean", clean_url)
    assert heliod(clean, "account").returncode == 0
    assert heliod_json(clean, "ledger", "export") == export
    assert heliod_json(clean, "balances") == heliod_json(crashed, "balances")
