"""The kill loop's short version: `bench/kill_loop.py` with a dozen SIGKILLs, in the suite.

The bench (docs/performance.md, "A thousand kills") runs `heliod run` against a SunSpec
inverter over Modbus TCP, a meter publishing at QoS 1 to Mosquitto and a platform that
checks signatures, kills it at random moments (in start-up and while it serves), then
checks exact energy, each MWh minted once, `ledger verify`, every acknowledged MQTT
message stored once and every mint pushed with its committed bytes. Here it runs with 10
kills and a fixed seed; its own checks decide, and the figures must show the kills landed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT, require_binary

KILLS = 10
ARGS = ["--kills", str(KILLS), "--seed", "14", "--max-delay", "1", "--progress", "0", "--json"]


@pytest.mark.timeout(180)
def test_a_dozen_kills_lose_and_double_nothing() -> None:
    require_binary("mosquitto")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "kill_loop.py"), *ARGS],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    figures = json.loads(done.stdout)
    assert figures["problems"] == []
    assert figures["kills"] == KILLS
    assert figures["killed_before_ready"] >= 1  # some in start-up
    assert figures["killed_after_ready"] >= 5  # most while serving
    assert figures["ledger_verify"] == "ok"
    mqtt = figures["mqtt"]
    assert mqtt["acknowledged_to_meter"] > 0
    assert mqtt["stored"] == mqtt["acknowledged_to_meter"]
    assert mqtt["lost"] == mqtt["stored_twice"] == mqtt["not_sent"] == 0
    assert min(figures["mwh_minted"].values()) >= 1
    assert figures["push"]["mint_events"] == sum(figures["mwh_minted"].values())
