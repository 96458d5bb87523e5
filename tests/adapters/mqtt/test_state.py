"""The plant state published on MQTT (docs/mqtt.md): its power is every fresh device power of the plant."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from heliod.adapters.mqtt import MqttPublisher
from heliod.adapters.store import Store
from heliod.daemon.boot.settings import intervals_us, mqtt_parts
from heliod.daemon.config import load_config
from heliod.daemon.jobs.mqtt_state import StatePublisher
from heliod.rewards.readings import Reading
from heliod.rewards.times import to_us
from tests.adapters.mqtt.broker import Broker, Collector

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def opendtu_config(tmp_path: Path, broker: Broker) -> Path:
    """The shipped OpenDTU example (power on a device of its own, 5 s interval) on our broker."""
    text = (ROOT / "config" / "mqtt-opendtu.toml").read_text()
    path = tmp_path / "heliod.toml"
    path.write_text(text.replace("mqtt://127.0.0.1:1883", broker.url))
    return path


def states(reader: Collector, n: int) -> list[dict[str, Any]]:
    msgs = reader.wait_for(lambda m: len([1 for t, _, _ in m if t.endswith("/state")]) >= n)
    return [json.loads(p, parse_float=Decimal) for t, p, _ in msgs if t == "heliod/balcony/state"]


def test_state_power_sums_fresh_power_of_every_device(broker: Broker, tmp_path: Path) -> None:
    config = load_config(opendtu_config(tmp_path, broker))
    parts = mqtt_parts(config)
    assert parts is not None
    settings = parts.link
    store = Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")
    store.ingest(
        [
            Reading("hm800", T0, {"energy_wh": Decimal("6294000.000")}),
            Reading("hm800-power", T0, {"power_w": Decimal("612.400")}),
        ],
        to_us(T0),
    )
    now = [to_us(T0 + timedelta(seconds=14))]  # within 3 × 5 s of the power reading
    publisher = MqttPublisher(settings, "heliod", ["balcony"])
    state = StatePublisher(publisher, store, intervals_us(config, 1.0), lambda: now[0], every_s=0)
    reader = Collector(broker, "heliod/+/state")
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        state.publish()
        assert publisher.flush(5)
        first = states(reader, 1)
        now[0] = to_us(T0 + timedelta(seconds=16))  # the power reading is now stale
        state.publish()
        assert publisher.flush(5)
        second = states(reader, 2)
    finally:
        reader.close()
        publisher.stop()
        store.close()
    # Before the fix: 0 (only the energy device's power was summed, and it has none).
    assert first[0]["power_w"] == Decimal("612.400")
    # Before the fix: 612.4 forever, e.g. all night after the last message.
    assert second[-1]["power_w"] == 0
