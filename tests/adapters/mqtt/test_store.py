"""Into the real store: a crash between receipt and commit means redelivery, never loss."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from heliod.adapters.mqtt import MqttSettings, MqttSubscriber
from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.rewards.readings import Reading
from heliod.rewards.times import to_us
from tests.adapters.mqtt.broker import Broker, Publisher
from tests.adapters.mqtt.test_subscriber import METER, msg

ROOT = Path(__file__).resolve().parents[3]


def stored_seqs(store: Store) -> list[int]:
    with store.read() as conn:
        rows = conn.execute(select(t.readings.c.ts_us).order_by(t.readings.c.id)).scalars()
        return [us // 1_000_000 - 1_700_000_000 for us in rows]


def rejected(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.rejected_readings)).scalar_one())


def wait_stored(store: Store, n: int, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        got = stored_seqs(store)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_store_failure_then_restart_delivers_again(broker: Broker, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")
    calls: list[int] = []

    def crashing_store(readings: list[Reading]) -> None:
        calls.append(len(readings))
        raise OSError("the store went away before the commit")

    def real_store(readings: list[Reading]) -> None:
        store.ingest(readings, to_us(datetime.now(UTC)))

    settings = MqttSettings(url=broker.url, client_id="heliod-store", devices=(METER,))
    first = MqttSubscriber(settings, crashing_store)
    first.start()
    pub = Publisher(broker)
    try:
        assert first.wait_connected(10)
        time.sleep(0.3)
        pub.publish([msg(i) for i in range(1, 6)])
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
        first.stop()
        assert calls
        assert first.stats.acked == 0
        second = MqttSubscriber(settings, real_store)
        second.start()
        try:
            got = wait_stored(store, 5)
        finally:
            second.stop()
    finally:
        pub.close()
        store.close()
    assert got == [1, 2, 3, 4, 5]


def test_sigkill_mid_stream_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'heliod.db'}"
    store = Store.open(db_url)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tests.adapters.mqtt.ingest_child", broker.url, db_url]

    def spawn() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        return proc

    n = 4000
    pub = Publisher(broker)
    child = spawn()
    try:
        pub.publish([msg(i) for i in range(n // 2)])
        while len(stored_seqs(store)) < n // 8:
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)  # heliod dies between receipt and commit
        child.wait(10)
        at_crash = len(stored_seqs(store))
        pub.publish([msg(i) for i in range(n // 2, n)])  # published while heliod is down
        child = spawn()
        got = wait_stored(store, n, timeout=60)
    finally:
        pub.close()
        child.send_signal(signal.SIGTERM)
        child.wait(10)
    assert at_crash < n // 2, "the crash came after everything was stored: nothing tested"
    assert got == list(range(n))  # every message exactly once, in order
    print(f"{rejected(store)} redelivered duplicates rejected by the store")
    store.close()
