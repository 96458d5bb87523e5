"""The daemon's /healthz and /metrics, wired from its real parts (daemon/boot/health.py).

A plant minting before its register is imported warns and degrades until a backer is in
force; an accountant whose commits the database refuses is `failing` after 3 failures in
a row, with the database's error, and `ok` again once it commits.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from heliod.adapters.store import schema as t
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.build import build_runtime
from heliod.daemon.boot.runtime import Options, Runtime
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.cli.simulator import InverterServer
from heliod.daemon.config import load_config
from tests.e2e.harness import steady_inverter, write_config
from tests.support import free_port


def _wait(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def inverter() -> Iterator[InverterServer]:
    server = steady_inverter()
    yield server
    server.stop()


def test_healthz_says_why_it_is_degraded_and_recovers(
    tmp_path: Path, inverter: InverterServer, caplog: pytest.LogCaptureFixture
) -> None:
    api = free_port()
    path = write_config(tmp_path, api_port=api, modbus_port=inverter.port, poll="200ms")
    config = load_config(path, env={})
    runtime: Runtime = build_runtime(config, options=Options(listen=("127.0.0.1", api)))

    def healthz() -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/healthz", timeout=2) as answer:
                return dict(json.loads(answer.read()))
        except OSError:
            return None

    def mints() -> int:
        with runtime.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.mints)).scalar() or 0)

    caplog.set_level(logging.INFO)
    runtime.start()
    try:
        # No register imported: the first MWh goes to undistributed, said three ways.
        _wait("a MWh", lambda: mints() >= 1)
        body = _wait(
            "the unbacked plant in /healthz", lambda: (h := healthz()) and h["reasons"] and h
        )
        assert body["status"] == "degraded"
        assert body["reasons"][0].startswith("Plant brassemonte minted MWh ")
        assert body["jobs"]["accountant"] == {"state": "ok", "failures": 0, "last_error": None}
        assert body["store"]["state"] == "ok"
        assert body["store"]["free_bytes"] > 0
        warned = [
            r for r in caplog.records if r.levelname == "WARNING" and "no backer" in r.getMessage()
        ]
        assert warned[0].getMessage().startswith("brassemonte minted MWh 1")
        sample = runtime.metrics.registry.get_sample_value
        assert sample("heliod_plant_unbacked", {"plant": "brassemonte"}) == 1
        assert sample("heliod_health_degraded") == 1

        # The database refuses the accountant's commits (as a full disk does).
        with runtime.store.write() as conn:
            for event in ("INSERT", "UPDATE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON accountant "
                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                )
        body = _wait(
            "the accountant failing",
            lambda: (h := healthz()) and h["jobs"]["accountant"]["state"] == "failing" and h,
        )
        job = body["jobs"]["accountant"]
        assert job["failures"] >= 3
        assert "database or disk is full" in job["last_error"]
        assert any(r.startswith("Job accountant failed ") for r in body["reasons"])
        assert sample("heliod_job_failing", {"job": "accountant"}) == 1
        with runtime.store.write() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse_insert")
            conn.exec_driver_sql("DROP TRIGGER refuse_update")

        # A backer from the beginning: the next mint is backed, and all is well again.
        plant = config.plant("brassemonte")
        with runtime.store.write() as conn:
            apply_rows(conn, plant.id, parse_register("backer,amount\nann,1\n", plant.tz), 0)
        body = _wait("/healthz ok", lambda: (h := healthz()) and h["status"] == "ok" and h)
        assert body["reasons"] == []
        assert body["jobs"]["accountant"]["state"] == "ok"
    finally:
        assert runtime.stop()
    minted = [r.getMessage() for r in caplog.records if r.getMessage().startswith("minted MWh")]
    assert len(minted) == len(set(minted)) == mints()  # each mint logged once, after its commit
