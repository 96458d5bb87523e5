"""A subscriber's memory stays flat under floods of large, refused and valid messages.

The subscriber runs in a child process (`ingest_child`: MqttSubscriber into the real
SQLite store) and its resident memory is read from /proc from outside. Before the fix,
every refused QoS 1 message kept its raw bytes in the redelivery memory (2,000 entries)
and heliod announced no Maximum Packet Size: 1 MiB payloads took a daemon from 75 MB to
899 MB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from heliod.adapters.store import Store
from tests.adapters.mqtt.broker import Broker, Publisher
from tests.adapters.mqtt.test_store import ROOT, stored_seqs, wait_stored
from tests.adapters.mqtt.test_subscriber import msg

TOPIC = "tele/meter1/SENSOR"
MIB = 1024 * 1024
# Growth allowed over the whole run, peak included. The leak this guards against is
# hundreds of MB; what remains is the allocator and SQLite's page cache settling.
ALLOWED_GROWTH = 20 * MIB


def memory(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_resident_memory_stays_flat_under_floods(broker: Broker, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'heliod.db'}"
    store = Store.open(db_url)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # A quiet connection is renewed after 1 s: Mosquitto stalls after some hundreds of
    # discarded messages until then (test_oversized.py).
    cmd = [sys.executable, "-m", "tests.adapters.mqtt.ingest_child", broker.url, db_url, "1"]
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE)
    pub = Publisher(broker)
    n = 0  # valid messages published so far (their seq numbers are 0..n-1)

    def valid(count: int) -> None:
        nonlocal n
        for lo in range(n, n + count, 1000):
            pub.publish([msg(i) for i in range(lo, min(lo + 1000, n + count))], timeout=60)
        n += count
        assert wait_stored(store, n, timeout=120)[-1] == n - 1

    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        valid(3000)  # warm up: imports, store, the redelivery memory filled with 2,000 entries
        base = memory(child.pid)["VmRSS"]
        # Oversized: 1 MiB payloads, over the 64 KiB Maximum Packet Size heliod announces.
        for _ in range(8):
            pub.publish([(TOPIC, b"x" * MIB)] * 50, timeout=60)
            valid(1)  # stored after everything before it was handled
        after_oversized = memory(child.pid)
        # Deliverable but refused: 60 KiB of garbage each, under the packet limit.
        for _ in range(10):
            pub.publish([(TOPIC, b"y" * (60 * 1024))] * 100, timeout=60)
        valid(1)
        after_refused = memory(child.pid)
        valid(20_000)
        after_valid = memory(child.pid)
    finally:
        pub.close()
        child.send_signal(signal.SIGTERM)
        child.wait(10)
    assert len(stored_seqs(store)) == n  # the floods stored nothing
    store.close()
    mib = {
        "base": base / MIB,
        "after 400 x 1 MiB": after_oversized["VmRSS"] / MIB,
        "after 1,000 x 60 KiB refused": after_refused["VmRSS"] / MIB,
        "after 20,000 valid": after_valid["VmRSS"] / MIB,
        "peak": after_valid["VmHWM"] / MIB,
    }
    print(", ".join(f"{k}: {v:.1f} MiB" for k, v in mib.items()))
    assert after_oversized["VmHWM"] - base < ALLOWED_GROWTH, mib
    assert after_refused["VmHWM"] - base < ALLOWED_GROWTH, mib
    assert after_valid["VmHWM"] - base < ALLOWED_GROWTH, mib
