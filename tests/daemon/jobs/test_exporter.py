"""The export loop against a real VictoriaMetrics (outage, crash) and a fake InfluxDB (401, 400)."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import func, select

from heliod.adapters.influx import InfluxSettings, InfluxWriter
from heliod.adapters.influx.lines import reading_lines, reading_prefix
from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.export_source import Batch
from heliod.adapters.store.store import ExportLines
from heliod.daemon.jobs.accountant import Accountant, PlantBook
from heliod.daemon.jobs.export.ahead import BuiltAhead
from heliod.daemon.jobs.export.loop import Exporter, SystemicRefusal
from heliod.daemon.read.export import ExportCollector, export_health
from heliod.rewards.energy import Bound
from heliod.rewards.ledger import PlantRules
from heliod.rewards.readings import Reading
from heliod.rewards.times import from_us
from tests.victoria import FakeInflux, Request, Victoria, error

T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
NOW = T0 + 400 * 86_400_000_000  # the gateway clock: after every reading
PLANTS = {"inv1": "p1", "inv2": "p1", "meter": "p2"}
TOKEN = "s3cret-token"


def make_readings(
    first: int, count: int, devices: tuple[str, ...] = ("inv1", "inv2", "meter")
) -> list[Reading]:
    """`count` minutes of readings per device from minute `first`: +50 kWh a minute."""
    out = []
    for i in range(first, first + count):
        for n, device in enumerate(devices):
            fields = {
                "energy_wh": Decimal(i * 50_000 + n) + Decimal("0.125"),
                "power_w": Decimal(3_000_000 - i) / 1000,
            }
            if device == "meter":
                fields["ac_voltage_v"] = Decimal(230_000 + i % 97) / 1000
            out.append(Reading(device, from_us(T0 + i * 60_000_000), fields))
    return out


def books() -> list[PlantBook]:
    rules = PlantRules(
        "p1", Bound.of(Decimal(100_000), Decimal("1.2")), frozenset({"inv1", "inv2"}), None
    )
    return [PlantBook(rules, 10**8, "SLR", 8)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")
    yield s
    s.close()


@pytest.fixture(scope="module")
def vm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vm")


@pytest.fixture
def victoria(vm_dir: Path, request: pytest.FixtureRequest) -> Iterator[Victoria]:
    vm = Victoria(vm_dir / request.node.name).start()
    yield vm
    vm.stop()


def exporter(store: Store, url: str, **kw: Any) -> Exporter:
    writer = InfluxWriter(InfluxSettings(url, "solar", "heliod", TOKEN, timeout_s=5))
    return Exporter(store, writer, PLANTS, lambda: int(time.time() * 1e6), **kw)


def assert_exported_exactly(vm: Victoria, store: Store) -> None:
    """Every stored reading and mint is in VictoriaMetrics with its exact value and time."""
    got = vm.export('{__name__=~"reading_.*|mint_.*"}')
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], dict[int, float]] = {}
    with store.read() as conn:
        r = t.readings.c
        for device, ts_us, e, w, extra in conn.execute(
            select(r.device, r.ts_us, r.energy_mwh, r.power_mw, r.extra).order_by(r.id)
        ):
            tags = (("device", device), ("plant", PLANTS[device]))
            fields = {"energy_wh": e, "power_w": w}
            for name, value in fields.items():
                if value is not None:
                    expected.setdefault((f"reading_{name}", tags), {})[ts_us // 1000] = float(
                        Decimal(value) / 1000
                    )
            if extra:
                expected.setdefault(("reading_ac_voltage_v", tags), {})[ts_us // 1000] = float(
                    Decimal(extra.split('"')[3])
                )
        m = t.mints.c
        for plant, k, at_us, units in conn.execute(
            select(m.plant, m.mwh_index, m.completed_at_us, m.units)
        ):
            expected.setdefault(("mint_mwh_index", (("plant", plant),)), {})[at_us // 1000] = k
            expected.setdefault(("mint_units", (("plant", plant),)), {})[at_us // 1000] = units
            expected.setdefault(("mint_tokens", (("plant", plant),)), {})[at_us // 1000] = (
                units / 1e8
            )
    assert got.keys() == expected.keys()
    for key, series in expected.items():
        assert got[key] == series, key


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- a real server -----------------------------------------------------------------------


@pytest.fixture
def any_store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture(params=["formatted", "outbox"])
def rendering(request: pytest.FixtureRequest) -> str:
    """Readings formatted at export time, or rendered when stored (export_outbox)."""
    return str(request.param)


def render_when_stored(store: Store, rendering: str, max_points: int) -> None:
    if rendering == "outbox":
        prefixes = {d: reading_prefix(p, d) for d, p in PLANTS.items()}
        store.export_lines = ExportLines(partial(reading_lines, prefixes=prefixes), max_points)


def outbox_rows(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.export_outbox)).scalar() or 0)


def test_backlog_of_readings_and_mints_is_exported_exactly(
    any_store: Store, victoria: Victoria, rendering: str
) -> None:
    store = any_store
    render_when_stored(store, rendering, 60)
    for first in range(0, 600, 100):
        store.ingest(make_readings(first, 100), NOW)
    result = Accountant(store, books(), lambda: NOW).run()
    assert len(result.mints) >= 50  # 2 inverters × 50 kWh × 600 minutes = 60 MWh
    ex = exporter(store, victoria.url, batch_size=250)
    written = ex.drain()
    assert written == 600 * 3 + len(result.mints)
    assert_exported_exactly(victoria, store)
    health = export_health(ex.store, ex.state)
    assert health["pending"] == 0
    assert health["state"] == "ok"
    assert store.position("exporter") == 1800
    assert ex.drain() == 0  # nothing new: nothing written
    ex.trim()  # what the export does when idle
    assert outbox_rows(store) == 0
    if store.dialect == "sqlite":  # positions commit without fsync; other writers still do
        with store.write() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_outage_of_the_server_loses_nothing(
    store: Store, victoria: Victoria, rendering: str
) -> None:
    render_when_stored(store, rendering, 100)
    ex = exporter(store, victoria.url, batch_size=100, idle_s=0.05, backoff_max_s=0.5)
    ex.start()
    try:
        store.ingest(make_readings(0, 200), NOW)
        wait_for(
            lambda: export_health(ex.store, ex.state)["pending"] == 0,
            what="the first readings exported",
        )
        victoria.stop()
        for first in range(200, 700, 100):  # the gateway goes on storing while it is down
            store.ingest(make_readings(first, 100), NOW)
            time.sleep(0.2)
        health = export_health(ex.store, ex.state)
        assert health["state"] == "retrying"
        assert health["pending"] > 0
        assert "unreachable" in health["last_error"]
        time.sleep(1.5)
        assert ex.state.in_row >= 3  # /healthz: the export job is failing
        victoria.start()
        wait_for(
            lambda: export_health(ex.store, ex.state)["pending"] == 0, what="the backlog exported"
        )
        assert export_health(ex.store, ex.state)["state"] == "ok"
        assert ex.state.in_row == 0
        wait_for(lambda: outbox_rows(store) == 0, what="the sent outbox rows deleted when idle")
    finally:
        ex.stop()
    assert_exported_exactly(victoria, store)


CRASHER = """
import sys, time
from heliod.adapters.influx import InfluxSettings, InfluxWriter
from heliod.adapters.store.export_source import Batch
from heliod.adapters.influx.lines import reading_lines, reading_prefix
from heliod.adapters.store import Store
from heliod.daemon.jobs.export.loop import Exporter
store = Store.open(sys.argv[1])
writer = InfluxWriter(InfluxSettings(sys.argv[2], "solar", "heliod", "t"))
plants = {"inv1": "p1", "inv2": "p1", "meter": "p2"}
Exporter(store, writer, plants, lambda: int(time.time() * 1e6), batch_size=int(sys.argv[3])).drain()
"""


def test_killed_mid_export_resends_at_most_one_batch(
    store: Store, victoria: Victoria, tmp_path: Path, rendering: str
) -> None:
    render_when_stored(store, rendering, 200)
    for first in range(0, 20_000, 2000):
        store.ingest(make_readings(first, 2000), NOW)
    total = 60_000
    batch = 200
    proc = subprocess.Popen([sys.executable, "-c", CRASHER, store.url, victoria.url, str(batch)])
    try:
        wait_for(lambda: store.position("exporter") >= total // 5, what="the export to start")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = store.position("exporter")
    assert 0 < killed_at < total, "the exporter must be killed mid-way"
    got = victoria.export('{__name__="reading_power_w"}')
    arrived = sum(len(series) for series in got.values())
    # Everything up to the position arrived; beyond it, at most the batch that was in flight.
    assert killed_at <= arrived <= killed_at + batch
    again = exporter(store, victoria.url, batch_size=batch)
    again.drain()
    assert_exported_exactly(victoria, store)
    again.trim()
    assert outbox_rows(store) == 0


# -- answers only a real InfluxDB gives, from a server of our own -------------------------


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    server = FakeInflux()
    yield server
    server.close()


def test_bad_token_is_a_clear_error_in_log_health_and_metrics(
    store: Store, fake: FakeInflux, caplog: pytest.LogCaptureFixture
) -> None:
    fake.answer = lambda _r: error(401, "unauthorized access")
    store.ingest(make_readings(0, 10), NOW)
    ex = exporter(store, fake.url, idle_s=0.05, permanent_retry_s=0.3)
    registry = CollectorRegistry()
    registry.register(ExportCollector(ex.store, ex.state))
    caplog.set_level(logging.INFO, logger="heliod.exporter")
    ex.start()
    try:
        wait_for(lambda: ex.state.state == "error", what="the auth error")
        health = export_health(ex.store, ex.state)
        assert health["state"] == "error"
        assert "refused the token (HTTP 401: unauthorized access)" in health["last_error"]
        assert health["pending"] == 30
        metrics = generate_latest(registry).decode()
        assert 'heliod_export_error{kind="auth"} 1.0' in metrics
        assert "heliod_export_up 0.0" in metrics
        assert 'heliod_export_pending{measurement="reading"} 30.0' in metrics
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1  # said once, not at every retry
        assert "influxdb.token_file" in errors[0].getMessage()
        time.sleep(0.8)  # retried a few times meanwhile, the position never moved
        assert len(fake.requests) >= 2
        assert store.position("exporter") == 0
        fake.answer = lambda _r: (204, {}, b"")  # the operator fixed the token's permissions
        wait_for(
            lambda: export_health(ex.store, ex.state)["pending"] == 0, what="the export to resume"
        )
        assert ex.state.state == "ok"
        assert "heliod_export_up 1.0" in generate_latest(registry).decode()
    finally:
        ex.stop()
    assert "s3cret-token" not in caplog.text
    assert any("export resumed" in r.getMessage() for r in caplog.records)


def _refuse_bad_device(request: Request) -> tuple[int, dict[str, str], bytes]:
    if b"device=bad" in request.body:
        return error(400, 'partial write: field type conflict: input field "power_w"')
    return 204, {}, b""


def test_points_refused_on_their_own_are_parked(store: Store, fake: FakeInflux) -> None:
    fake.answer = _refuse_bad_device
    store.ingest(make_readings(0, 50) + make_readings(0, 2, devices=("bad",)), NOW)
    ex = exporter(store, fake.url, batch_size=1000)
    assert ex.drain() == 150
    accepted = [
        line for r in fake.requests if b"device=bad" not in r.body for line in r.body.split(b"\n")
    ]
    assert len(accepted) == len(set(accepted)) == 150
    with store.read() as conn:
        parked = conn.execute(select(t.export_rejects.c.line, t.export_rejects.c.reason)).all()
    assert [line.split(" ")[0] for line, _ in parked] == ["reading,device=bad"] * 2
    assert all("HTTP 400: partial write: field type conflict" in why for _, why in parked)
    assert store.position("exporter") == 152
    assert export_health(ex.store, ex.state)["rejected"] == 2


def test_a_batch_refused_whole_stops_the_export_without_parking(
    store: Store, fake: FakeInflux
) -> None:
    fake.answer = lambda _r: error(400, "field type conflict: energy_wh is integer")
    store.ingest(make_readings(0, 20), NOW)
    with pytest.raises(SystemicRefusal, match="fix the bucket"):
        exporter(store, fake.url).drain()
    assert store.position("exporter") == 0
    assert export_health(store, exporter(store, fake.url).state)["rejected"] == 0


def _gaps(fake: FakeInflux) -> list[float]:
    at = [r.at for r in fake.requests]
    return [b - a for a, b in itertools.pairwise(at)]


def test_backoff_is_full_jitter_capped(store: Store, fake: FakeInflux) -> None:
    fake.answer = lambda _r: error(503, "busy")
    store.ingest(make_readings(0, 1), NOW)
    ex = exporter(store, fake.url, idle_s=0.05, backoff_max_s=0.4)
    ex.start()
    time.sleep(2.5)
    ex.stop()
    gaps = _gaps(fake)
    # Uncapped, 1 s doubling would allow about 3 requests in 2.5 s; capped at 0.4 s with
    # full jitter the mean gap is 0.2 s.
    assert len(gaps) >= 5
    assert max(gaps) < 0.4 + 0.3
    assert ex.state.state == "retrying"
    assert store.position("exporter") == 0


def test_retry_after_is_honoured(store: Store, fake: FakeInflux) -> None:
    fake.answer = lambda _r: error(429, "too many requests", {"Retry-After": "1"})
    store.ingest(make_readings(0, 1), NOW)
    ex = exporter(store, fake.url, idle_s=0.05, backoff_max_s=5)
    ex.start()
    time.sleep(2.5)
    ex.stop()
    gaps = _gaps(fake)
    assert 1 <= len(gaps) <= 2
    assert min(gaps) >= 0.95


# -- batches built ahead -----------------------------------------------------------------


def test_batches_built_ahead_come_in_order_errors_included_and_stop_promptly() -> None:
    built: list[int] = []

    def next_batch(after: int) -> Batch:
        if after >= 40:
            raise RuntimeError("the store went away")
        built.append(after)
        return Batch(after, after + 10, 10, b"x", 1, more=True)

    ahead = BuiltAhead(next_batch, 0, depth=2)
    assert [ahead.next().after for _ in range(4)] == [0, 10, 20, 30]
    with pytest.raises(RuntimeError, match="went away"):
        ahead.next()
    ahead.close()
    # Never more than `depth` batches wait: closing with a full queue returns at once.
    slow = BuiltAhead(lambda after: Batch(after, after + 1, 1, b"x", 1, more=True), 0, depth=2)
    time.sleep(0.1)
    t0 = time.monotonic()
    slow.close()
    assert time.monotonic() - t0 < 1
    # The end of the backlog ends the thread: the last batch says no more follow.
    last = BuiltAhead(lambda after: Batch(after, after + 1, 1, b"x", 1, more=after < 2), 0)
    assert [last.next().after for _ in range(3)] == [0, 1, 2]
    last.close()
    assert built == [0, 10, 20, 30]
