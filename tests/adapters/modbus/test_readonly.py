"""heliod never writes: checked on the requests a server actually received.

The session-wide check lives in conftest.py (the `request_log` fixture fails the session
if any fake server ever saw a code other than 1-4). These tests show the log can see a
write, and run one full round of everything heliod does against a fresh log.
"""

from __future__ import annotations

import inspect
import time

import pytest
from pymodbus.client import ModbusTcpClient

from heliod.adapters.errors import PermanentError
from heliod.adapters.modbus import (
    ConnectionPool,
    ModbusDeviceSettings,
    UnitReader,
    read_device,
    scan,
)
from heliod.adapters.modbus.client import Connection, Endpoint
from heliod.adapters.modbus.poller import Poller
from tests.adapters.modbus.fakes import FakeServer, FakeUnit, RequestLog
from tests.adapters.modbus.sunspec_image import COMMON, sunspec_image

IMAGE = sunspec_image([COMMON, (103, {"W": 1, "W_SF": 0, "WH": 2, "WH_SF": 0})])


def test_the_request_log_sees_writes() -> None:
    """Negative control: a plain pymodbus client that writes shows up in the log."""
    log = RequestLog()
    with FakeServer({1: FakeUnit(holding=IMAGE)}, log) as server:
        client = ModbusTcpClient("127.0.0.1", port=server.port)
        assert client.connect()  # type: ignore[no-untyped-call]
        client.write_register(40000, 7, device_id=1)
        client.close()  # type: ignore[no-untyped-call]
    assert log.non_read_codes() == {6: 2}  # the request and its answer


def test_polls_scans_and_faults_send_read_codes_only() -> None:
    log = RequestLog()
    unit = FakeUnit(holding=IMAGE)
    with FakeServer({1: unit, 2: FakeUnit(input={30775: 0, 30776: 5})}, log) as server:
        settings = ModbusDeviceSettings(id="inv", host="127.0.0.1", port=server.port)
        read_device(settings)
        scan("127.0.0.1", server.port)
        poller = Poller([settings], lambda batch: None)
        poller.start()
        time.sleep(0.2)
        unit.exception = 2
        time.sleep(0.2)
        poller.stop()
        unit.exception = None
        pool = ConnectionPool()
        reader = pool.reader(settings)
        assert reader.read_coils(0, 1) == [False]
        assert reader.read_discrete_inputs(0, 1) == [False]
        meter = pool.reader(
            ModbusDeviceSettings(id="m", host="127.0.0.1", port=server.port, unit_id=2)
        )
        assert meter.read_input_registers(30775, 2) == [0, 5]
        pool.close()
    assert log.total() >= 10
    assert set(log.requests) <= {1, 2, 3, 4}
    assert log.non_read_codes() == {}


def test_the_adapter_holds_read_methods_only() -> None:
    public = {n for n, _ in inspect.getmembers(UnitReader) if not n.startswith("_")}
    assert public == {
        "read_coils",
        "read_discrete_inputs",
        "read_holding_registers",
        "read_input_registers",
        "read_registers",
        "retries",
        "timeout_s",
        "unit_id",
    }
    conn_public = {n for n, _ in inspect.getmembers(Connection) if not n.startswith("_")}
    assert conn_public == {"close", "read"}


@pytest.mark.parametrize("code", [5, 6, 15, 16, 22, 23])
def test_a_write_code_is_refused_before_the_wire(code: int) -> None:
    log = RequestLog()
    with FakeServer({1: FakeUnit(holding=IMAGE)}, log) as server:
        conn = Connection(Endpoint("tcp", "127.0.0.1", server.port))
        with pytest.raises(PermanentError, match="never writes"):
            conn.read(code, 1, 40000, 1, timeout_s=1, retries=0)
        conn.close()
    assert log.total() == 0
