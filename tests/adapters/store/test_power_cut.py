"""Killing the writer mid-ingest (SIGKILL, no clean-up at all) loses at most the batch in memory.

A subprocess plays the daemon's pollers: it builds a batch of readings for 20 devices in
memory, commits it with `Store.ingest` and prints `acked K` once the commit returned.
The test kills it at a random moment, several times, reopening the store each time.
What docs/storage.md promises, checked here:

- the store opens (integrity check) and holds whole batches only: a batch is committed
  whole or not at all, with its device counters and its power rollups;
- every acknowledged batch is there; the loss is at most the one batch that was being
  committed (for the daemon: the readings of at most one flush interval).

SIGKILL tests the process crash; a power cut also loses what the OS had not written, which
SQLite's `synchronous=FULL` (an fsync at every commit) covers and no test here can cut.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.rollups import bucket_of

DEVICES = 20
PER_DEVICE = 10  # readings per device in one batch: 200 readings a commit
T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z

WRITER = f"""
import sys, time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from heliod.adapters.store import Store
from heliod.rewards.readings import Reading
store = Store.open(sys.argv[1])
batch = int(sys.argv[2])
t0 = datetime.fromtimestamp({T0} / 1e6, UTC)
while True:
    readings = []
    for j in range({PER_DEVICE}):
        second = batch * {PER_DEVICE} + j
        for d in range({DEVICES}):
            fields = {{
                "energy_wh": Decimal(second * 1000 + d) + Decimal("0.5"),
                "power_w": Decimal((second * 7 + d) % 5000),
                "ac_voltage_v": Decimal("230.125"),
            }}
            readings.append(Reading(f"inv{{d:02d}}", t0 + timedelta(seconds=second), fields))
    store.ingest(readings, int(time.time() * 1e6))
    print("acked", batch, flush=True)
    batch += 1
"""


def batches_in(store: Store) -> Counter[int]:
    """Readings stored per batch number."""
    per_batch: Counter[int] = Counter()
    with store.read() as conn:
        for (ts_us,) in conn.execute(select(t.readings.c.ts_us)):
            per_batch[(ts_us - T0) // 1_000_000 // PER_DEVICE] += 1
    return per_batch


def assert_consistent(store: Store) -> None:
    """Device counters and power rollups agree with the readings they summarize."""
    r, d, p = t.readings.c, t.devices.c, t.power_buckets.c
    with store.read() as conn:
        counted = dict(conn.execute(select(d.device, d.readings)).all())
        stored = dict(conn.execute(select(r.device, func.count()).group_by(r.device)).all())
        assert counted == stored
        expected: dict[tuple[str, int], list[int]] = {}
        for device, ts_us, power in conn.execute(select(r.device, r.ts_us, r.power_mw)):
            acc = expected.setdefault((device, bucket_of(ts_us)), [0, 0])
            acc[0] += power
            acc[1] += 1
        rollups = {
            (dev, s): [v, n]
            for dev, s, v, n in conn.execute(select(p.device, p.start_us, p.sum_mw, p.n))
        }
        assert rollups == expected


def test_sigkill_during_heavy_ingestion_loses_at_most_the_batch_in_flight(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'heliod.db'}"
    Store.open(url).close()
    rng = random.Random(7)
    next_batch = 0
    for _round in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(next_batch)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # wait for a first commit: the writer is busy now
        assert first.startswith(b"acked"), proc.stderr.read() if proc.stderr else first
        time.sleep(rng.uniform(0.2, 1.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        out = proc.stdout.read()
        # A kill while the child prints may leave its last line cut short: not an ack.
        lines = [first, *out[: out.rfind(b"\n") + 1].splitlines()]
        acked = [int(line.split()[1]) for line in lines]
        assert acked == list(range(next_batch, acked[-1] + 1))
        store = Store.open(url)  # refuses a damaged file
        try:
            per_batch = batches_in(store)
            complete = sorted(per_batch)
            assert set(per_batch.values()) == {DEVICES * PER_DEVICE}, "a batch was split"
            assert complete == list(range(len(complete))), "a batch is missing"
            # Every acknowledged batch is stored; at most one more (committed, not yet acked).
            assert acked[-1] + 1 <= len(complete) <= acked[-1] + 2
            assert_consistent(store)
        finally:
            store.close()
        next_batch = len(complete)
    assert next_batch > 10  # the writer really was busy
