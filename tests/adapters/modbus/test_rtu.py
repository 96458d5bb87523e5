"""Modbus RTU on a serial line (a socat pseudo-terminal pair) and RTU framing over TCP."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from heliod.adapters.modbus import ModbusDeviceSettings, read_device, scan
from heliod.adapters.modbus.poller import Poller
from heliod.rewards.readings import Reading
from tests.adapters.modbus.fakes import FakeUnit, InFlight, Serve
from tests.adapters.modbus.sunspec_image import COMMON, sunspec_image
from tests.support import require_binary

BAUD = 38400
INVERTER = {"W": 1800, "W_SF": 0, "WH": 3_210_000, "WH_SF": 0, "Hz": 5000, "Hz_SF": -2}


@pytest.fixture
def pty_pair() -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals: the device's end and heliod's end of an RS485 line."""
    socat = require_binary("socat")
    proc = subprocess.Popen(
        [socat, "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    ptys: list[str] = []
    deadline = time.monotonic() + 10
    while len(ptys) < 2 and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if match := re.search(r"PTY is (\S+)", line):
            ptys.append(match.group(1))
    if len(ptys) < 2:
        proc.kill()
        pytest.fail("socat did not report two pseudo-terminals")
    yield ptys[0], ptys[1]
    proc.terminate()
    proc.wait(5)


def rtu(device_id: str, port: str, unit_id: int = 1, **kw: object) -> ModbusDeviceSettings:
    return ModbusDeviceSettings(
        id=device_id,
        transport="rtu",
        serial_port=port,
        baudrate=BAUD,
        unit_id=unit_id,
        timeout_s=1.0,
        **kw,  # type: ignore[arg-type]
    )


def test_sunspec_inverter_over_rtu(serve: Serve, pty_pair: tuple[str, str]) -> None:
    device_end, heliod_end = pty_pair
    serve({1: FakeUnit(holding=sunspec_image([COMMON, (103, INVERTER)]))},
          serial_port=device_end, framer="rtu", baudrate=BAUD)  # fmt: skip
    reading = read_device(rtu("inv", heliod_end))
    assert reading.energy_wh == Decimal("3210000.000")
    assert reading.power_w == Decimal("1800.000")
    assert reading.fields["frequency_hz"] == Decimal("50.000")
    result = scan(serial_port=heliod_end, unit_id=1, baudrate=BAUD)
    assert [m.id for m in result.models] == [1, 103]
    assert result.endpoint == heliod_end


def test_two_devices_share_one_serial_line(serve: Serve, pty_pair: tuple[str, str]) -> None:
    device_end, heliod_end = pty_pair
    line = InFlight()
    sdm = FakeUnit(
        input=dict.fromkeys(range(52, 76), 0) | {74: 0x4480, 75: 0x0000},  # 1024.0 kWh export
        in_flight=line,
    )
    inv = FakeUnit(holding=sunspec_image([COMMON, (103, INVERTER)]), in_flight=line)
    serve({1: inv, 2: sdm}, serial_port=device_end, framer="rtu", baudrate=BAUD)
    got: list[Reading] = []
    poller = Poller(
        [
            rtu("inv", heliod_end, 1, poll_interval_s=0.2),
            rtu("meter", heliod_end, 2, profile="eastron_sdm630", poll_interval_s=0.2),
        ],
        got.extend,
        flush_interval_s=0.2,
    )
    poller.start()
    time.sleep(1.5)
    poller.stop()
    by_device = {r.device: r for r in got}
    assert by_device["inv"].energy_wh == Decimal("3210000.000")
    assert by_device["meter"].energy_wh == Decimal("1024000.000")
    assert sum(r.device == "meter" for r in got) >= 3
    assert line.max == 1  # one request at a time on the bus
    assert {h.state for h in poller.health().values()} == {"ok"}


def test_rtu_framing_over_tcp(serve: Serve) -> None:
    server = serve({5: FakeUnit(holding=sunspec_image([COMMON, (103, INVERTER)]))}, framer="rtu")
    settings = ModbusDeviceSettings(
        id="gw", transport="rtu-over-tcp", host="127.0.0.1", port=server.port, unit_id=5
    )
    assert read_device(settings).energy_wh == Decimal("3210000.000")
