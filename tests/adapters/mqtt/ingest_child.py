"""A heliod-like process for crash tests: MQTT subscriber into the real store, until killed.

python -m tests.adapters.mqtt.ingest_child BROKER_URL DB_URL [IDLE_RECONNECT_S]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from heliod.adapters.mqtt import MqttSettings, MqttSubscriber
from heliod.adapters.mqtt.subscriber import IDLE_RECONNECT_S
from heliod.adapters.store import Store
from heliod.rewards.readings import Reading
from heliod.rewards.times import to_us
from tests.adapters.mqtt.test_subscriber import METER


def main(broker_url: str, db_url: str, idle_reconnect_s: float = IDLE_RECONNECT_S) -> None:
    """Ingest until SIGKILL or SIGTERM."""
    store = Store.open(db_url)

    def sink(readings: list[Reading]) -> None:
        store.ingest(readings, to_us(datetime.now(UTC)))

    sub = MqttSubscriber(
        MqttSettings(url=broker_url, client_id="heliod-crash", devices=(METER,)),
        sink,
        batch_max=200,
        batch_wait_s=0.05,
        idle_reconnect_s=idle_reconnect_s,
    )
    sub.start()
    if not sub.wait_connected(10):
        raise SystemExit(f"not connected: {sub.last_error}")
    time.sleep(0.3)  # SUBACK
    print("ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(*sys.argv[1:3], *map(float, sys.argv[3:4]))
