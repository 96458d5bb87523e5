"""Shared gateway connections, error mapping, timeouts and reconnects against real servers."""

from __future__ import annotations

import threading
import time

import pytest

from heliod.adapters.errors import PermanentError, RetryableError
from heliod.adapters.modbus import ConnectionPool, ModbusDeviceSettings, UnitReader
from tests.adapters.modbus.fakes import FakeUnit, InFlight, Serve

IMAGE = {a: a - 100 for a in range(100, 130)}


def reader(pool: ConnectionPool, port: int, unit_id: int = 1, **kwargs: object) -> UnitReader:
    settings = ModbusDeviceSettings(
        id=f"u{unit_id}",
        host="127.0.0.1",
        port=port,
        unit_id=unit_id,
        **kwargs,  # type: ignore[arg-type]
    )
    return pool.reader(settings)


def test_unit_ids_behind_one_gateway_share_one_serialized_connection(serve: Serve) -> None:
    gateway = InFlight()
    units = {uid: FakeUnit(holding=IMAGE, in_flight=gateway) for uid in (1, 2, 3)}
    for unit in units.values():
        unit.delay_s = 0.02
    server = serve(units)
    pool = ConnectionPool()
    readers = [reader(pool, server.port, uid) for uid in units]
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def poll(r: UnitReader) -> None:
        try:
            for _ in range(5):
                results.append(r.read_holding_registers(100 + r.unit_id, 3))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=poll, args=(r,)) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    pool.close()
    assert errors == []
    assert sorted(map(tuple, results)) == sorted(
        [(1, 2, 3)] * 5 + [(2, 3, 4)] * 5 + [(3, 4, 5)] * 5
    )
    assert server.connections == 1  # one TCP connection for the three unit ids
    assert gateway.max == 1  # never two requests at once on it
    assert all(u.reads == 5 for u in units.values())


@pytest.mark.parametrize(
    ("code", "error", "text"),
    [
        (2, PermanentError, "exception 2 \\(illegal data address\\)"),
        (1, PermanentError, "illegal function"),
        (4, RetryableError, "server device failure"),
        (6, RetryableError, "server device busy"),
        (11, RetryableError, "gateway target device failed to respond"),
    ],
)
def test_exception_responses_map_to_our_two_errors(
    serve: Serve, code: int, error: type, text: str
) -> None:
    unit = FakeUnit(holding=IMAGE)
    unit.exception = code
    server = serve({1: unit})
    pool = ConnectionPool()
    with pytest.raises(error, match=text):
        reader(pool, server.port).read_holding_registers(100, 2)
    assert unit.reads == 1  # an exception answer is not retried within the poll
    unit.exception = None
    assert reader(pool, server.port).read_holding_registers(100, 2) == [0, 1]
    pool.close()


def test_reading_an_unserved_address_is_permanent(serve: Serve) -> None:
    server = serve({1: FakeUnit(holding=IMAGE)})
    pool = ConnectionPool()
    with pytest.raises(PermanentError, match="illegal data address"):
        reader(pool, server.port).read_holding_registers(500, 2)
    pool.close()


def test_a_silent_device_times_out_then_recovers(serve: Serve) -> None:
    unit = FakeUnit(holding=IMAGE)
    server = serve({1: unit})
    pool = ConnectionPool()
    r = reader(pool, server.port, timeout_s=0.3, retries=1)
    unit.delay_s = 3600
    started = time.monotonic()
    with pytest.raises(RetryableError):
        r.read_holding_registers(100, 2)
    elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 2.0  # two attempts of 0.3 s, no more
    unit.delay_s = 0
    assert r.read_holding_registers(100, 2) == [0, 1]
    assert server.connections >= 2  # the link was dropped after the timeout, then remade
    pool.close()


def test_reconnect_backs_off_and_recovers(serve: Serve) -> None:
    server = serve({1: FakeUnit(holding=IMAGE)})
    pool = ConnectionPool(backoff_initial_s=0.3, backoff_max_s=0.6)
    r = reader(pool, server.port, retries=0)
    assert r.read_holding_registers(100, 1) == [0]
    server.stop()
    with pytest.raises(RetryableError):
        r.read_holding_registers(100, 1)  # the link is gone
    with pytest.raises(RetryableError, match="cannot connect"):
        r.read_holding_registers(100, 1)
    with pytest.raises(RetryableError, match="backoff"):
        r.read_holding_registers(100, 1)  # no new connect attempt before the delay
    server.start()
    time.sleep(0.7)
    assert r.read_holding_registers(100, 1) == [0]
    pool.close()


def test_dropped_connection_is_remade_within_the_same_poll(serve: Serve) -> None:
    server = serve({1: FakeUnit(holding=IMAGE)})
    pool = ConnectionPool()
    r = reader(pool, server.port, retries=1)
    assert r.read_holding_registers(100, 1) == [0]
    server.stop()
    server.start()  # the device rebooted: our socket is dead, the port answers again
    assert r.read_holding_registers(101, 1) == [1]
    pool.close()


def test_devices_on_one_serial_line_must_agree_on_its_settings() -> None:
    pool = ConnectionPool()
    base = {"transport": "rtu", "serial_port": "/dev/ttyUSB0"}
    pool.reader(ModbusDeviceSettings(id="a", baudrate=9600, **base))  # type: ignore[arg-type]
    with pytest.raises(PermanentError, match="share baudrate"):
        pool.reader(ModbusDeviceSettings(id="b", baudrate=19200, unit_id=2, **base))  # type: ignore[arg-type]
