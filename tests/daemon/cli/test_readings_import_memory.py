"""Review: `readings import` looks up "already stored" rows for the file's rows only.

The check loads every stored reading of the device between the file's first and last
timestamp. A short file spanning a long stored history (a yearly meter export, two rows a
day, for a device polled every 10 s: 3.15 million stored readings) holds them all in a set
of tuples, about 620 MB on a gateway that has 1 GB, for a few hundred rows.
"""

from __future__ import annotations

import argparse
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import insert

from heliod.adapters.store import schema as t
from heliod.daemon.cli.commands.context import Context
from heliod.daemon.cli.commands.readings import import_readings
from heliod.daemon.config import load_config
from tests.helpers_cli import readings_csv, write_config

T0_US = 1_709_251_200_000_000  # 2024-03-01T00:00:00Z
STORED = 200_000
STEP_US = 10_000_000  # a reading every 10 s


def test_a_two_row_file_does_not_load_the_history_between_its_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    ctx = Context(load_config(cfg, env={}), json=True)
    with ctx.store.write() as conn:
        conn.execute(
            insert(t.readings),
            [
                {
                    "device": "inv1",
                    "ts_us": T0_US + i * STEP_US,
                    "energy_mwh": 1000 * i,
                    "received_us": T0_US + i * STEP_US,
                }
                for i in range(STORED)
            ],
        )
    # The first and the last stored readings (199,999 × 10 s after T0), as a meter
    # export would give them again.
    path = readings_csv(
        tmp_path / "r.csv", [("2024-03-01T00:00:00Z", "0"), ("2024-03-24T03:33:10Z", "199999")]
    )
    tracemalloc.start()
    try:
        assert import_readings(ctx, argparse.Namespace(device="inv1", file=str(path))) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        ctx.store.close()
    assert '"already_stored": 2' in capsys.readouterr().out.replace("\n", "").replace("  ", " ")
    assert peak < 8_000_000, f"{peak / 1e6:.1f} MB for a two-row file"
