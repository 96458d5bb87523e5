"""MQTT ingest one layer at a time: thread CPU per message of each step heliod adds to paho.

No broker: the bench's own messages (bench/mqtt_ingest.py) go through

- decode: `Router.route`, the strict JSON decode into exact Decimals and the `Reading`;
- store: `Store.ingest` in batches of 1,000 into a fresh SQLite store (one durable commit
  each), the readings of the decode step;
- digest: the redelivery digest paho's thread takes of every QoS 1 message.

Each round measures every step with `time.thread_time`; medians and minima over rounds.
On a shared machine the minimum is the least disturbed figure; compare two versions of the
code by running this alternately in each checkout.

    .venv/bin/python bench/mqtt_layers.py [--messages 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from mqtt_ingest import DEVICE, message

from heliod.adapters.mqtt.badpayloads import BadPayloads
from heliod.adapters.mqtt.redelivery import digest
from heliod.adapters.mqtt.routing import Router
from heliod.adapters.store import Store
from heliod.rewards.readings import Reading
from heliod.rewards.times import to_us


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    n = args.messages
    start_ts = int(time.time()) - args.rounds * n - 60
    router = Router((DEVICE,), BadPayloads())
    spent: dict[str, list[float]] = {"decode": [], "store": [], "digest": []}
    with tempfile.TemporaryDirectory(prefix="heliod-layers-") as tmp:
        store = Store.open(f"sqlite:///{tmp}/heliod.db")
        for r in range(args.rounds):
            msgs = [message(i, 50, start_ts) for i in range(r * n, (r + 1) * n)]
            arrival = datetime.now(UTC)
            t = time.thread_time()
            for topic, payload in msgs:
                digest(topic, payload)
            spent["digest"].append(time.thread_time() - t)
            readings: list[Reading] = []
            t = time.thread_time()
            for topic, payload in msgs:
                readings.extend(router.route(topic, payload, arrival))
            spent["decode"].append(time.thread_time() - t)
            t = time.thread_time()
            for lo in range(0, n, 1000):
                result = store.ingest(readings[lo : lo + 1000], to_us(datetime.now(UTC)))
                if result.rejected:
                    raise SystemExit(f"the store rejected {result.rejected[0]}")
            spent["store"].append(time.thread_time() - t)
        store.close()
    for step, seconds in spent.items():
        per = [s / n * 1e6 for s in seconds]
        print(
            f"{step:>7}: median {statistics.median(per):6.2f} µs/message,"
            f" min {min(per):6.2f} (rounds: {', '.join(f'{x:.1f}' for x in per)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
