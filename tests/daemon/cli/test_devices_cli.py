"""`heliod scan` and `heliod read` against a real SunSpec Modbus server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from heliod.daemon.cli.simulator import InverterServer
from tests.e2e.harness import HELIOD, heliod, steady_inverter, write_config
from tests.support import free_port


@pytest.fixture(scope="module")
def inverter() -> Iterator[InverterServer]:
    server = steady_inverter(245_000.0)
    yield server
    server.stop()


def test_scan_finds_the_models_and_the_energy_model(inverter: InverterServer) -> None:
    out = subprocess.run(
        [*HELIOD, "scan", "--host", "127.0.0.1", "--port", str(inverter.port), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [m["id"] for m in result["models"]] == [1, 103]
    assert result["energy_model"] == 103


def test_read_polls_a_configured_device_once(tmp_path: Path, inverter: InverterServer) -> None:
    config = write_config(tmp_path, api_port=free_port(), modbus_port=inverter.port)
    out = heliod(config, "read", "inv1", "--json")
    assert out.returncode == 0, out.stderr
    reading = json.loads(out.stdout)
    assert reading["device"] == "inv1"
    assert reading["fields"]["power_w"] == 245000
    assert reading["fields"]["energy_wh"] >= 1_000_000
    assert reading["counter_range_wh"] == 2**32  # acc32 WH with WH_SF = 0


def test_read_unknown_device_is_a_usage_error_and_a_dead_one_a_failure(tmp_path: Path) -> None:
    config = write_config(tmp_path, api_port=free_port(), modbus_port=free_port())
    unknown = heliod(config, "read", "nope")
    assert unknown.returncode == 2
    assert "unknown device 'nope'" in unknown.stderr
    dead = heliod(config, "read", "inv1")
    assert dead.returncode == 1
    assert "inv1:" in dead.stderr
