"""The runtime in-process: parts fail alone and come back, SIGTERM-like stop flushes everything."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.adapters.store.store import ExportLines
from heliod.daemon.boot.build import build_runtime
from heliod.daemon.boot.metrics import Metrics
from heliod.daemon.boot.runtime import Options, Runtime
from heliod.daemon.boot.supervisor import Job, Service, Supervisor
from heliod.daemon.cli.simulator import InverterServer
from heliod.daemon.config import load_config
from heliod.rewards.readings import Reading
from tests.e2e.harness import heliod, steady_inverter, write_config
from tests.support import free_port


def _wait(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.loads(answer.read())
    except OSError:
        return None


@pytest.fixture
def inverter() -> Iterator[InverterServer]:
    server = steady_inverter()
    yield server
    server.stop()


def _runtime(tmp_path: Path, inverter: InverterServer, api_port: int) -> Runtime:
    path = write_config(tmp_path, api_port=api_port, modbus_port=inverter.port, poll="200ms")
    return build_runtime(load_config(path, env={}), options=Options(listen=("127.0.0.1", api_port)))


def _mints(runtime: Runtime) -> int:
    with runtime.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.mints)).scalar() or 0)


def test_a_failing_job_backs_off_while_the_others_keep_running() -> None:
    metrics = Metrics()
    supervisor = Supervisor(metrics)
    ran = {"good": 0, "bad": 0}

    def good() -> None:
        ran["good"] += 1

    def bad() -> None:
        ran["bad"] += 1
        raise RuntimeError("broken on purpose")

    supervisor.add_job(Job("good", good, 0.1, executor="core"))
    supervisor.add_job(Job("bad", bad, 0.1, executor="io"))
    supervisor.start()
    time.sleep(3.5)
    assert supervisor.stop(2.0)
    assert ran["good"] >= 20
    # Backoff 1 s then 2 s: tried at about 0, 1 and 3 s, not 35 times.
    assert 2 <= ran["bad"] <= 4, ran
    assert supervisor.status()["job:bad"]["failing"] is True
    assert "broken on purpose" in str(supervisor.status()["job:bad"]["last_error"])
    text = metrics.render().decode()
    assert f'heliod_failures_total{{kind="job",name="bad"}} {float(ran["bad"])}' in text


def test_a_dead_service_is_restarted_with_backoff() -> None:
    supervisor = Supervisor()
    starts: list[float] = []
    alive = threading.Event()

    def start() -> None:
        starts.append(time.monotonic())
        if len(starts) < 3:
            raise OSError("cannot start yet")
        alive.set()

    supervisor.add_service(Service("flaky", start, lambda _t: alive.clear(), alive.is_set))
    supervisor.start()
    _wait("the third start", alive.is_set, timeout=10)
    alive.clear()  # it dies
    _wait("a restart after death", lambda: len(starts) >= 4 and alive.is_set(), timeout=10)
    supervisor.stop(2.0)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[1] > gaps[0] * 1.5, gaps  # the delay doubles


def test_http_that_cannot_bind_is_retried_and_accounting_goes_on(
    tmp_path: Path, inverter: InverterServer
) -> None:
    api_port = free_port()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", api_port))
    squatter.listen()
    runtime = _runtime(tmp_path, inverter, api_port)
    runtime.start()
    try:
        # The API cannot start, yet readings are stored and MWh minted.
        _wait("a MWh minted while the API is down", lambda: _mints(runtime) >= 1, timeout=20)
        assert runtime.supervisor.status()["service:http"]["failing"] is True
        squatter.close()
        health = _wait(
            "the API after the port is freed",
            lambda: _get_json(f"http://127.0.0.1:{api_port}/healthz"),
            timeout=20,
        )
        assert health["devices"]["inv1"]["state"] == "ok"
    finally:
        squatter.close()
        assert runtime.stop()


def test_stop_flushes_every_successful_poll_and_the_ledger_verifies(
    tmp_path: Path, inverter: InverterServer
) -> None:
    api_port = free_port()
    path = write_config(tmp_path, api_port=api_port, modbus_port=inverter.port, poll="200ms")
    config = load_config(path, env={})
    runtime = build_runtime(config, options=Options(listen=("127.0.0.1", api_port)))
    runtime.start()
    _wait("two MWh", lambda: _mints(runtime) >= 2, timeout=30)
    started = time.monotonic()
    assert runtime.stop()
    assert time.monotonic() - started < 10
    # Read after the stop: no poll runs any more.
    ok = runtime.metrics.registry.get_sample_value(
        "heliod_polls_total", {"device": "inv1", "result": "ok"}
    )
    # The poller's own counters are exported too (kept across poller restarts).
    sample = runtime.metrics.registry.get_sample_value
    assert sample("heliod_poller_dropped_readings_total") == 0
    assert sample("heliod_poller_skipped_polls_total", {"device": "inv1"}) is not None
    store = Store.open(config.storage.url, migrate=False)
    try:
        with store.read() as conn:
            stored = conn.execute(
                select(func.count()).where(t.readings.c.device == "inv1")
            ).scalar()
            last_id = conn.execute(select(func.max(t.readings.c.id))).scalar()
            position = repo.load_state(conn).position
    finally:
        store.close()
    assert stored == ok  # every reading polled before the stop was committed
    assert position == last_id  # and the final accounting pass saw it
    verify = heliod(config.path, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_without_an_export_the_retention_job_deletes_leftover_outbox_rows(
    tmp_path: Path, inverter: InverterServer
) -> None:
    """Lines rendered while [influxdb] was configured would otherwise stay forever."""
    api_port = free_port()
    path = write_config(tmp_path, api_port=api_port, modbus_port=inverter.port, poll="200ms")
    config = load_config(path, env={})
    runtime = build_runtime(
        config,
        options=Options(
            listen=("127.0.0.1", api_port),
            retention_interval_s=0.3,
            retention_first_delay_s=0.3,
        ),
    )
    assert config.influxdb is None
    runtime.store.export_lines = ExportLines(lambda rows: b"x" * len(rows), 2)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    runtime.store.ingest(
        [Reading("old", at + timedelta(seconds=s), {"power_w": Decimal(s)}) for s in range(5)],
        int(time.time() * 1e6),
    )
    runtime.store.export_lines = None

    def outbox_rows() -> int:
        with runtime.store.read() as conn:
            return int(
                conn.execute(select(func.count()).select_from(t.export_outbox)).scalar() or 0
            )

    assert outbox_rows() == 3
    runtime.start()
    try:
        _wait("the outbox emptied", lambda: outbox_rows() == 0)
    finally:
        runtime.stop()
