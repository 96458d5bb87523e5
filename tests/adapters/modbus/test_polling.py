"""The poller against real servers: intervals, batches, health, faults and recovery."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from heliod.adapters.modbus import ModbusDeviceSettings
from heliod.adapters.modbus.configured import settings_from_mapping
from heliod.adapters.modbus.poller import Poller
from heliod.daemon.boot.settings import modbus_device
from heliod.rewards.readings import Reading
from tests.adapters.modbus.fakes import FakeServer, FakeUnit, Serve
from tests.adapters.modbus.sunspec_image import COMMON, model_points, sunspec_image

WH_OFFSET = next(p["offset"] for p in model_points(103) if p["name"] == "WH")


class Collector:
    """A sink that records each batch and when it came."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[tuple[float, list[Reading]]] = []

    def __call__(self, batch: list[Reading]) -> None:
        with self.lock:
            self.batches.append((time.monotonic(), list(batch)))

    def readings(self, device: str | None = None) -> list[Reading]:
        with self.lock:
            return [r for _, b in self.batches for r in b if device in (None, r.device)]


def inverter(energy_wh: int = 1_000_000, power_w: int = 2500) -> FakeUnit:
    values = {"W": power_w, "W_SF": 0, "WH": energy_wh, "WH_SF": 0}
    return FakeUnit(holding=sunspec_image([COMMON, (103, values)]))


def set_energy(unit: FakeUnit, energy_wh: int) -> None:
    """Write the inverter's WH (acc32) as the device would."""
    unit.set_words(40002 + 68 + WH_OFFSET, [energy_wh >> 16, energy_wh & 0xFFFF])


def device(
    server: FakeServer, device_id: str, interval_s: float, **kw: object
) -> ModbusDeviceSettings:
    return ModbusDeviceSettings(
        id=device_id,
        host="127.0.0.1",
        port=server.port,
        poll_interval_s=interval_s,
        timeout_s=kw.pop("timeout_s", 0.5),  # type: ignore[arg-type]
        retries=kw.pop("retries", 0),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.02)


Running = Callable[..., Poller]


@pytest.fixture
def running() -> Iterator[Running]:
    started: list[Poller] = []

    def start(*args: object, **kwargs: object) -> Poller:
        poller = Poller(*args, **kwargs)  # type: ignore[arg-type]
        started.append(poller)
        poller.start()
        return poller

    yield start
    for poller in started:
        poller.stop(timeout_s=3)


def test_each_device_on_its_own_interval_in_timed_batches(serve: Serve, running: Running) -> None:
    fast, slow = serve({1: inverter()}), serve({1: inverter()})
    sink = Collector()
    poller = running(
        [device(fast, "fast", 0.2), device(slow, "slow", 0.6)], sink, flush_interval_s=0.5
    )
    time.sleep(2.1)
    poller.stop()
    n_fast, n_slow = len(sink.readings("fast")), len(sink.readings("slow"))
    assert 7 <= n_fast <= 13
    assert 3 <= n_slow <= 5
    # batches, not one write per reading
    assert len(sink.batches) <= 7
    assert max(len(b) for _, b in sink.batches) >= 3
    reading = sink.readings("fast")[0]
    assert reading.energy_wh == Decimal("1000000.000")
    assert reading.counter_range_wh == Decimal(2**32)
    health = poller.health()
    assert health["fast"].state == "ok"
    assert health["fast"].polls == n_fast


def test_a_simulated_clock_in_the_past_starts_polling_at_once(
    serve: Serve, running: Running
) -> None:
    """The demo's clock may be hours behind the real one: APScheduler schedules in real
    time, so the first poll must not be dated on the daemon's clock (APScheduler would list
    every missed run since then: millions here, seconds of CPU and hundreds of MB)."""
    server = serve({1: inverter()})
    sink = Collector()
    behind = timedelta(days=30)
    started = time.monotonic()
    running(
        [device(server, "inv", 0.05)],
        sink,
        clock=lambda: datetime.now(UTC) - behind,
        flush_interval_s=0.1,
    )
    wait_until(lambda: len(sink.readings("inv")) >= 1, timeout_s=5.0)
    assert time.monotonic() - started < 2.0
    assert sink.readings("inv")[0].ts < datetime.now(UTC) - behind + timedelta(minutes=1)


def test_exception_responses_set_error_and_recover_by_themselves(
    serve: Serve, running: Running
) -> None:
    unit = inverter()
    server = serve({1: unit})
    poller = running([device(server, "inv", 0.1)], Collector(), flush_interval_s=0.2)
    wait_until(lambda: poller.health()["inv"].polls >= 1)
    unit.exception = 4  # server device failure: retryable
    wait_until(lambda: poller.health()["inv"].consecutive_failures >= 3)
    health = poller.health()["inv"]
    assert health.state == "error"
    assert "server device failure" in (health.last_error or "")
    unit.exception = 2  # illegal address: a person must act, error at once
    wait_until(lambda: "illegal data address" in (poller.health()["inv"].last_error or ""))
    assert poller.health()["inv"].state == "error"
    unit.exception = None
    wait_until(lambda: poller.health()["inv"].consecutive_failures == 0)
    assert poller.health()["inv"].state == "ok"


def test_a_dead_device_never_delays_the_others(serve: Serve, running: Running) -> None:
    dead_unit = inverter()
    dead, alive = serve({1: dead_unit}), serve({1: inverter()})
    dead_unit.delay_s = 3600  # connected, but never answers
    sink = Collector()
    poller = running(
        [device(dead, "dead", 0.2, timeout_s=1.0, retries=1), device(alive, "alive", 0.2)],
        sink,
        flush_interval_s=0.2,
    )
    time.sleep(2.5)
    dead_health = poller.health()["dead"]
    dead_until = datetime.now(UTC)
    dead_unit.delay_s = 0  # it answers again: the poller picks it up by itself
    wait_until(lambda: poller.health()["dead"].polls >= 1)
    assert poller.health()["dead"].state == "ok"
    poller.stop()
    times = [r.ts for r in sink.readings("alive") if r.ts < dead_until]
    assert len(times) >= 10
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert max(gaps) < 1.0  # each dead poll takes 2 s; the other link never waited for it
    assert sink.readings("dead")[0].energy_wh == Decimal("1000000.000")
    assert dead_health.consecutive_failures >= 1
    assert dead_health.skipped >= 1  # its interval is shorter than one dead poll


def test_dropped_connection_and_restart_recover(serve: Serve, running: Running) -> None:
    server = serve({1: inverter()})
    sink = Collector()
    poller = running([device(server, "inv", 0.1)], sink, flush_interval_s=0.2)
    wait_until(lambda: poller.health()["inv"].polls >= 2)
    server.stop()  # the gateway reboots
    wait_until(lambda: poller.health()["inv"].state == "error")
    server.start()
    polls = poller.health()["inv"].polls
    wait_until(lambda: poller.health()["inv"].polls > polls + 2, timeout_s=15)
    assert poller.health()["inv"].state == "ok"


def test_not_implemented_energy_is_absent_never_zero(serve: Serve, running: Running) -> None:
    unit = inverter(energy_wh=5_000_000)
    server = serve({1: unit})
    sink = Collector()
    poller = running([device(server, "inv", 0.05)], sink, flush_interval_s=0.1)
    wait_until(lambda: len(sink.readings()) >= 3)
    set_energy(unit, 0)  # acc32 0: not accumulated, e.g. while the inverter restarts
    wait_until(lambda: any("energy_wh" not in r.fields for r in sink.readings()))
    set_energy(unit, 5_000_123)
    wait_until(lambda: sink.readings()[-1].energy_wh == Decimal("5000123.000"))
    poller.stop()
    energies = {r.energy_wh for r in sink.readings()}
    assert energies == {Decimal("5000000.000"), Decimal("5000123.000"), None}
    gap = [r for r in sink.readings() if r.energy_wh is None]
    assert all(r.power_w == Decimal("2500.000") for r in gap)  # still a reading, power only
    assert all(r.counter_range_wh is None for r in gap)
    assert poller.health()["inv"].state == "ok"


def test_stale_after_three_intervals_without_reading(serve: Serve) -> None:
    now = [datetime(2024, 6, 1, 12, 0, tzinfo=UTC)]
    server = serve({1: inverter()})
    poller = Poller([device(server, "inv", 10)], Collector(), clock=lambda: now[0])
    try:
        assert poller.health()["inv"].state == "ok"  # grace period after start
        now[0] += timedelta(seconds=30)
        assert poller.health()["inv"].state == "stale"  # nothing for 3 intervals
        reading = poller.poll_now("inv")
        assert reading is not None
        assert reading.ts == now[0]
        health = poller.health()["inv"]
        assert (health.state, health.last_reading_at) == ("ok", now[0])
        assert health.to_dict()["last_reading_at"] == "2024-06-01T12:00:30.000000Z"
        now[0] += timedelta(seconds=29)
        assert poller.health()["inv"].state == "ok"
        now[0] += timedelta(seconds=1)
        assert poller.health()["inv"].state == "stale"
    finally:
        poller.stop()


def test_stop_is_quick_and_flushes(serve: Serve, running: Running) -> None:
    silent = inverter()
    slow, fine = serve({1: silent}), serve({1: inverter()})
    silent.delay_s = 3600
    sink = Collector()
    poller = running(
        [device(slow, "silent", 0.1, timeout_s=1.0), device(fine, "fine", 0.1)],
        sink,
        flush_interval_s=60,  # only stop() flushes
    )
    # One shared worker at start: "fine" may wait behind the silent device's first read
    # until the pool grows for it (a check every 0.5 s, the worker held for 0.25 s).
    deadline = time.monotonic() + 3.0
    while poller.health()["fine"].polls < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sink.readings()  # buffered until stop
    started = time.monotonic()
    poller.stop(timeout_s=3)
    assert time.monotonic() - started < 1.5  # bounded by one in-flight timeout
    housekeepers = {"modbus-watch", "modbus-flush"}
    assert not [t for t in threading.enumerate() if t.name in housekeepers]
    assert len(sink.readings("fine")) >= 3
    count = len(sink.readings())
    time.sleep(0.3)
    assert len(sink.readings()) == count  # nothing polls after stop


def test_a_failing_sink_loses_nothing(serve: Serve) -> None:
    server = serve({1: inverter()})
    received: list[Reading] = []
    calls = [0]

    def flaky(batch: list[Reading]) -> None:
        calls[0] += 1
        if calls[0] <= 2:
            raise OSError("disk full")
        received.extend(batch)

    poller = Poller([device(server, "inv", 60)], flaky)
    try:
        first = poller.poll_now("inv")
        poller.flush()  # refused
        second = poller.poll_now("inv")
        poller.flush()  # refused again
        poller.flush()  # accepted: both, in order
    finally:
        poller.stop()
    assert received == [first, second]


def test_settings_from_mapping_reads_contract_names() -> None:
    settings = settings_from_mapping(
        {
            "id": "m1",
            "protocol": "modbus",
            "transport": "rtu",
            "serial_port": "/dev/ttyUSB0",
            "baudrate": 19200,
            "parity": "E",
            "unit_id": 7,
            "profile": "custom",
            "poll_interval": timedelta(seconds=5),
            "timeout": "500ms",
            "registers": [
                {
                    "field": "energy_wh",
                    "address": 30529,
                    "kind": "input",
                    "type": "u32",
                    "word_order": "big",
                    "scale": Decimal("0.1"),
                    "unit": "kWh",
                },
            ],
        }
    )
    assert settings.transport == "rtu"
    assert (settings.poll_interval_s, settings.timeout_s) == (5.0, 0.5)
    assert settings.registers[0].scale == Decimal("0.1")
    assert settings.registers[0].kind == "input"


def test_settings_from_the_daemon_config_model() -> None:
    devices = pytest.importorskip("heliod.daemon.config.devices")
    model = devices.ModbusDevice.model_validate(
        {
            "id": "inv1",
            "protocol": "modbus",
            "host": "192.0.2.20",
            "unit_id": 3,
            "poll_interval": "10s",
            "timeout": "2s",
            "profile": "custom",
            "registers": [
                {
                    "field": "energy_wh",
                    "address": 30529,
                    "kind": "input",
                    "type": "u32",
                    "scale": "1",
                    "unit": "Wh",
                },
            ],
        }
    )
    settings = modbus_device(model)
    assert (settings.host, settings.unit_id, settings.poll_interval_s) == ("192.0.2.20", 3, 10.0)
    assert settings.registers[0].address == 30529
