"""Faults that must not take the poller down: bad devices, link conflicts, stop, log floods."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heliod.adapters.errors import PermanentError
from heliod.adapters.modbus import ConnectionPool, ModbusDeviceSettings
from heliod.adapters.modbus.client import Endpoint
from heliod.adapters.modbus.configured import settings_from_mapping
from heliod.adapters.modbus.executor import LinkExecutor
from heliod.adapters.modbus.poller import Poller
from heliod.adapters.modbus.profiles import load_profile
from heliod.daemon.boot.settings import modbus_device
from heliod.daemon.config import ModbusDevice, load_config
from tests.adapters.modbus.fakes import FakeUnit, Serve
from tests.adapters.modbus.test_polling import Collector, device, inverter, wait_until

MY_PROFILE = """\
name = "My meter"
source = "test"
default_unit_id = 7
[[registers]]
field = "energy_wh"
address = 10
kind = "input"
type = "u32"
unit = "Wh"
"""


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()


def test_file_profile_is_loaded_and_a_bad_device_does_not_stop_the_others(
    serve: Serve, tmp_path: Path
) -> None:
    (tmp_path / "myprofile.toml").write_text(MY_PROFILE, encoding="utf-8")
    meter = FakeUnit(input={10: 0, 11: 4242})
    server = serve({7: meter, 1: inverter()})
    good = ModbusDeviceSettings(
        id="meter",
        host="127.0.0.1",
        port=server.port,
        unit_id=7,
        profile=str(tmp_path / "myprofile.toml"),
        timeout_s=1,
    )
    missing = ModbusDeviceSettings(
        id="ghost", host="127.0.0.1", port=server.port, profile=str(tmp_path / "nope.toml")
    )
    poller = Poller([missing, good], Collector())
    try:
        assert poller.poll_now("meter") is not None
        health = poller.health()
        assert health["meter"].state == "ok"
        assert health["ghost"].state == "error"
        assert "nope.toml" in (health["ghost"].last_error or "")
    finally:
        poller.stop(1)


def test_load_profile_reads_a_path(tmp_path: Path) -> None:
    path = tmp_path / "myprofile.toml"
    path.write_text(MY_PROFILE, encoding="utf-8")
    assert load_profile(str(path)).default_unit_id == 7
    with pytest.raises(PermanentError, match="not a profile name"):
        load_profile("My Profile")


def test_framing_conflict_has_its_own_message_and_spares_the_other_device(
    serve: Serve,
) -> None:
    server = serve({1: inverter()})
    tcp = device(server, "tcp", 10)
    rtu_over_tcp = device(server, "rot", 10, transport="rtu-over-tcp", unit_id=2)
    pool = ConnectionPool()
    pool.connection(Endpoint.of(tcp))
    with pytest.raises(PermanentError, match="framing"):
        pool.connection(Endpoint.of(rtu_over_tcp))
    poller = Poller([tcp, rtu_over_tcp], Collector())
    try:
        assert poller.poll_now("tcp") is not None
        assert poller.health()["rot"].state == "error"
        assert "framing" in (poller.health()["rot"].last_error or "")
    finally:
        poller.stop(1)


def test_stop_does_not_wait_for_a_read_on_a_silent_device(silent_port: int) -> None:
    silent = ModbusDeviceSettings(
        id="silent", host="127.0.0.1", port=silent_port, timeout_s=5.0, retries=2
    )
    poller = Poller([silent], Collector())
    poller.start()
    time.sleep(0.5)  # the first poll is now blocked in its read (up to 15 s)
    started = time.monotonic()
    poller.stop()
    assert time.monotonic() - started < 1.0
    assert poller.health()["silent"].failures == 0  # cut by stop: not the device's fault


def test_profile_default_unit_id_is_used_when_unit_id_is_not_written(tmp_path: Path) -> None:
    assert (
        settings_from_mapping({"id": "stp", "host": "h", "profile": "sma_sunny_tripower"}).unit_id
        == 3
    )
    assert settings_from_mapping({"id": "m", "host": "h", "profile": "sunspec"}).unit_id == 1
    (tmp_path / "myprofile.toml").write_text(MY_PROFILE, encoding="utf-8")
    (tmp_path / "heliod.toml").write_text(
        '[[plants]]\nid = "p1"\ncapacity_kw = 10\nenergy_devices = ["stp"]\n'
        '[plants.reward]\nsymbol = "SLR"\ntokens_per_mwh = "1"\n'
        '[[plants.devices]]\nid = "stp"\nprotocol = "modbus"\nhost = "h"\n'
        'profile = "sma_sunny_tripower"\n'
        '[[plants.devices]]\nid = "mine"\nprotocol = "modbus"\nhost = "h2"\n'
        'profile = "myprofile.toml"\n'
        '[[plants.devices]]\nid = "set"\nprotocol = "modbus"\nhost = "h3"\n'
        'profile = "sma_sunny_tripower"\nunit_id = 1\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path / "heliod.toml", env={})
    units = {
        d.id: modbus_device(d).unit_id for _, d in config.devices() if isinstance(d, ModbusDevice)
    }
    assert units == {"stp": 3, "mine": 7, "set": 1}


def test_a_failing_device_logs_once_then_rarely_and_says_when_it_recovers(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    unit = inverter()
    server = serve({1: unit})
    poller = Poller([device(server, "inv", 10)], Collector(), log_interval_s=0.5)
    caplog.set_level(logging.INFO, logger="heliod.adapters.modbus.poller")

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]

    try:
        for code in [4, 6, 11, 4, 6, 11, 4, 6, 11, 4]:  # a new message at every poll
            unit.exception = code
            poller.poll_now("inv")
        assert len(lines()) == 1
        time.sleep(0.6)
        poller.poll_now("inv")
        assert len(lines()) == 2
        assert "still failing after 11 polls (9 not logged)" in lines()[1]
        unit.exception = None
        poller.poll_now("inv")
        assert "answering again after 11 failed polls" in lines()[2]
    finally:
        poller.stop(1)


def test_a_failed_poll_moves_its_link_to_its_own_thread() -> None:
    executor = LinkExecutor(workers=1, slow_s=10)
    executor.start()
    threads: list[str] = []
    done = threading.Event()

    def failing() -> bool:
        threads.append(threading.current_thread().name)
        return False

    try:
        assert executor.submit("dead", "dead-1", failing)
        wait_until(lambda: executor.dedicated == 1, 5)

        def quick() -> None:
            threads.append("x")
            done.set()

        assert executor.submit("dead", "dead-2", quick)
        assert done.wait(5)
        assert executor.submit("dead", "dead-3", failing)
        wait_until(lambda: len(threads) == 3, 5)
        assert threads[0].startswith("modbus-pool")
        assert threads[2].startswith("modbus-link")
    finally:
        executor.shutdown(1)


def test_links_that_turn_silent_together_do_not_delay_a_healthy_one(serve: Serve) -> None:
    good = serve({1: inverter()})
    others = [serve({1: inverter()}) for _ in range(8)]
    devices = [device(good, "good", 0.5)]
    devices += [device(s, f"d{i}", 0.5, timeout_s=1.5, retries=1) for i, s in enumerate(others)]
    sink = Collector()
    poller = Poller(devices, sink, flush_interval_s=0.2)
    poller.start()
    try:
        time.sleep(1.2)
        outage = time.monotonic()
        for server in others:
            server.units[1].delay_s = 1000  # all stop answering at once
        time.sleep(5)
    finally:
        poller.stop(1)
    arrivals = [t for t, batch in sink.batches for r in batch if r.device == "good"]
    stamps = [r.ts.timestamp() for r in sink.readings("good")]
    assert arrivals and min(arrivals) < outage
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 1.6, gaps
