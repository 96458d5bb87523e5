"""The field story of a clock that jumped, black-box: `heliod run` under `faketime`, then not.

1. The gateway's clock is ten years ahead (`faketime -f +3650d heliod run`, with Debian's
   libfaketime preloaded into heliod itself): an MQTT meter without timestamps is stamped in 2036, stored and accounted.
2. The clock is right again: every reading is rejected as not after the last one.
   /healthz says `clock` and why, the log says so (once a minute), the metrics too.
3. `heliod readings reset-clock --device meter1 --yes`, while the daemon runs: the
   meter is accounted again at once, the energy its counter carried while rejected is
   credited, MWh completed after the reset have the right clock's (earlier) times, and
   `ledger verify` passes with the energy exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.mqtt.broker import Broker, Publisher
from tests.e2e.harness import TOKEN_SHA256, Daemon, heliod
from tests.support import free_port, require_binary, unavailable

STEP_KWH = 100  # each message: the counter 0.1 MWh further
# A 6 MW plant (× 1.2: 120 kWh a minute at most, docs/accounting.md): each 100 kWh step
# fits, but the 1 MWh the counter carries while its readings are rejected does not fit
# from F. It is credited only through the rejected reading the reset records (V): were V
# lost or misapplied, the step would wait in quarantine and this test would fail.
FIRST_KWH = 1000


def config(folder: Path, api: int, broker: Broker) -> Path:
    path = folder / "heliod.toml"
    path.write_text(
        f"""[daemon]
state_dir = "state"

[api]
listen = "127.0.0.1:{api}"
tokens = [{{ name = "e2e", sha256 = "{TOKEN_SHA256}" }}]

[mqtt]
url = "{broker.url}"
client_id = "heliod-clock"
publish_prefix = ""

[[plants]]
id = "roof"
capacity_kw = 6000
timezone = "Europe/Paris"
energy_devices = ["meter1"]

[plants.reward]
symbol = "ROOF"
tokens_per_mwh = "10"
decimals = 0

[[plants.devices]]
id = "meter1"
protocol = "mqtt"
topic = "tele/meter1/SENSOR"
fields.energy_wh = {{ path = "ENERGY.Total", unit = "kWh" }}
interval = "1s"
"""
    )
    (folder / "backers.csv").write_text("backer,amount\nann,1\n")
    return path


class Meter:
    """An MQTT meter without timestamps: heliod stamps each message when it arrives."""

    def __init__(self, broker: Broker) -> None:
        self.publisher = Publisher(broker, "meter1")
        self.kwh = FIRST_KWH - STEP_KWH
        self.sent: list[int] = []

    def send(self, count: int, retain: bool = False) -> None:
        for _ in range(count):
            self.kwh += STEP_KWH
            payload = json.dumps({"ENERGY": {"Total": self.kwh}}).encode()
            self.publisher.publish([("tele/meter1/SENSOR", payload)], retain=retain)
            self.sent.append(self.kwh)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    server = Broker(require_binary("mosquitto"), tmp_path / "mqtt")
    server.start()
    yield server
    server.stop()


def energy_wh(daemon: Daemon) -> Decimal | None:
    status, plants = daemon.get("/api/v1/plants")
    if status != 200:
        return None
    return Decimal(str(plants[0]["energy_wh"]))


def wait_energy(daemon: Daemon, wh: int) -> None:
    daemon.wait_for(f"E = {wh} Wh", lambda: energy_wh(daemon) == wh)


def healthz(daemon: Daemon) -> dict[str, Any]:
    status, body = daemon.get("/healthz", token=False)
    return body if status == 200 else {}


def faketime_env(offset: str) -> dict[str, str]:
    """What `faketime -f OFFSET` sets up, for heliod to be the process itself.

    The `faketime` wrapper would be the process the test signals, and would leave heliod
    running when SIGTERM kills it: the library is preloaded into heliod directly. Only
    the wall clock is moved, as on a gateway whose clock is wrong: CLOCK_MONOTONIC (every
    timeout and wait) never jumps.
    """
    require_binary("faketime")  # Debian's faketime: it depends on the library
    lib = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
    if not lib.exists():
        unavailable(f"{lib} is missing (apt-get install faketime)")
    return {"LD_PRELOAD": str(lib), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def test_a_clock_ten_years_ahead_then_right_then_reset(tmp_path: Path, broker: Broker) -> None:
    ahead = faketime_env("+3650d")
    api = free_port()
    cfg = config(tmp_path, api, broker)
    assert (
        heliod(
            cfg, "backers", "import", "--plant", "roof", str(tmp_path / "backers.csv")
        ).returncode
        == 0
    )
    meter = Meter(broker)

    # 1. Ten years ahead: 25 readings; the last is pending, E = 23 steps = 2.3 MWh.
    daemon = Daemon(cfg, api, env=ahead)
    try:
        daemon.wait_for("the API", lambda: healthz(daemon))
        # Retained, so heliod gets it once its new subscription is made, whenever that is.
        meter.send(1, retain=True)
        daemon.wait_for(
            "the first reading", lambda: healthz(daemon)["devices"]["meter1"]["last_reading_at"]
        )
        meter.send(24)
        wait_energy(daemon, 23 * STEP_KWH * 1000)
        assert healthz(daemon)["devices"]["meter1"]["state"] == "ok"  # right by its own clock
    finally:
        assert daemon.terminate()[0] == 0

    # 2. The right clock: readings of now are not after those of 2036.
    daemon = Daemon(cfg, api)
    try:
        daemon.wait_for("the API", lambda: healthz(daemon))
        meter.send(10)  # the counter goes on: +1 MWh, all rejected
        body = daemon.wait_for(
            "meter1 in state clock with 10 rejections",
            lambda: (
                (h := healthz(daemon))
                and h["devices"]["meter1"]["rejected"] == 10
                and h["devices"]["meter1"]["state"] == "clock"
                and h
            ),
        )
        assert body["status"] == "degraded"
        device = body["devices"]["meter1"]
        assert device["last_rejection"]["reason"] == "timestamp_not_after_last"
        assert device["last_reading_at"].startswith("203")  # the newest stored: ten years ahead
        [reason] = body["reasons"]
        assert "more than 5 minutes ahead of this gateway's clock" in reason
        assert "heliod readings reset-clock --device meter1" in reason
        assert energy_wh(daemon) == 23 * STEP_KWH * 1000  # frozen, as in the field
        log = daemon.wait_for(
            "the clock error in the log",
            lambda: (
                "ERROR heliod.health: meter1: its newest stored reading" in daemon.log()
                and daemon.log()
            ),
        )
        assert "more than 5 minutes ahead of this gateway's clock" in log
        assert "rejected, never accounted; the last: its time" in log
        assert "is not after the device's last reading, at 203" in log
        _, metrics = daemon.get("/metrics", token=False)
        assert 'heliod_device_state{device="meter1",state="clock"} 1.0' in metrics
        ahead = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith('heliod_device_clock_ahead_seconds{device="meter1"}')
        )
        assert ahead > 3649 * 86400

        # 3. The reset, while the daemon runs; then 15 readings more.
        reset = heliod(cfg, "readings", "reset-clock", "--device", "meter1", "--yes", "--json")
        assert reset.returncode == 0, reset.stderr
        seen = json.loads(reset.stdout)["seen"]
        assert Decimal(str(seen["value_wh"])) == meter.sent[-1] * 1000  # the newest rejected
        meter.send(15)
        # E from the first reading to the last confirmed one: nothing carried is lost.
        wait_energy(daemon, (meter.sent[-2] - meter.sent[0]) * 1000)
        body = daemon.wait_for(
            "/healthz ok", lambda: (h := healthz(daemon)) and h["status"] == "ok" and h
        )
        assert body["devices"]["meter1"]["state"] == "ok"
        assert body["devices"]["meter1"]["rejected"] == 10  # since start
        _, mints = daemon.get("/api/v1/mints?plant=roof")
    finally:
        assert daemon.terminate()[0] == 0
    # 4.8 MWh in all: MWh 1-2 completed ten years ahead, MWh 3-4 after the reset, now.
    assert meter.sent[-2] - meter.sent[0] == 4800
    assert [m["mwh_index"] for m in mints["items"]] == [1, 2, 3, 4]
    completed = [datetime.fromisoformat(m["completed_at"]) for m in mints["items"]]
    now = datetime.now(UTC)
    assert all(c - now > timedelta(days=3649) for c in completed[:2])
    assert all(abs(c - now) < timedelta(hours=1) for c in completed[2:])
    anomalies = heliod(cfg, "anomalies", "list", "--json")
    assert json.loads(anomalies.stdout) == []
    verify = heliod(cfg, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"E = {(meter.sent[-2] - meter.sent[0]) * 1000}" in verify.stdout
