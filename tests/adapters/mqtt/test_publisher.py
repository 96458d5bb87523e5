"""Publishing state, mint events, availability (with the last will) and HA discovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from heliod.adapters.mqtt import MqttPublisher, MqttSettings, PlantInfo
from heliod.adapters.mqtt.publisher import to_json
from tests.adapters.mqtt.broker import Broker, Collector, Publisher

STATE = {
    "power_w": Decimal("182340.5"),
    "energy_wh": Decimal("1234567.891"),
    "mwh_completed": 1,
    "next_mwh_progress": Decimal("0.234567891"),
    "updated_at": datetime(2024, 6, 1, 10, 15, tzinfo=UTC),
}


def exact(payload: bytes) -> Any:
    return json.loads(payload, parse_float=Decimal)


def last(messages: list[tuple[str, bytes, bool]], topic: str) -> tuple[bytes, bool] | None:
    found = [(p, r) for t, p, r in messages if t == topic]
    return found[-1] if found else None


def test_state_is_retained_exact_json(broker: Broker) -> None:
    pub = MqttPublisher(MqttSettings(url=broker.url), "heliod", ["brassemonte"])
    pub.start()
    try:
        assert pub.wait_connected(10)
        pub.publish_state("brassemonte", STATE)
        assert pub.flush(5)
        # Subscribing afterwards: only a retained message can arrive.
        late = Collector(broker, "heliod/#", "late-reader")
        msgs = late.wait_for(lambda m: last(m, "heliod/brassemonte/state") is not None)
        late.close()
    finally:
        pub.stop()
    payload, retained = last(msgs, "heliod/brassemonte/state")  # type: ignore[misc]
    assert retained
    assert b'"energy_wh":1234567.891' in payload
    assert exact(payload) == {
        "power_w": Decimal("182340.5"),
        "energy_wh": Decimal("1234567.891"),
        "mwh_completed": 1,
        "next_mwh_progress": Decimal("0.234567891"),
        "updated_at": "2024-06-01T10:15:00Z",
    }


def test_mint_event_without_credits(broker: Broker) -> None:
    reader = Collector(broker, "heliod/+/mint")
    pub = MqttPublisher(MqttSettings(url=broker.url), "heliod", ["brassemonte"])
    pub.start()
    try:
        assert pub.wait_connected(10)
        pub.publish_mint(
            "brassemonte",
            {
                "event": "mint",
                "id": "brassemonte:3",
                "plant": "brassemonte",
                "mwh_index": 3,
                "completed_at": datetime(2024, 6, 1, 10, 15, 7, tzinfo=UTC),
                "symbol": "SLR",
                "decimals": 18,
                "units": 10**18,
                "credits": [{"backer": "b1", "units": 10**18}],
                "undistributed_units": 0,
            },
        )
        msgs = reader.wait_for(lambda m: len(m) >= 1)
    finally:
        reader.close()
        pub.stop()
    topic, payload, retained = msgs[0]
    assert topic == "heliod/brassemonte/mint"
    assert not retained
    body = exact(payload)
    assert body["units"] == 10**18  # an integer, exactly, not 1e18
    assert "credits" not in body
    assert body["completed_at"] == "2024-06-01T10:15:07Z"


def test_availability_online_then_offline_on_clean_stop(broker: Broker) -> None:
    reader = Collector(broker, "heliod/+/availability")
    pub = MqttPublisher(MqttSettings(url=broker.url), "heliod", ["p1", "p2"])
    pub.start()
    assert pub.wait_connected(10)
    reader.wait_for(lambda m: len(m) >= 2)
    pub.stop()
    msgs = reader.wait_for(lambda m: len(m) >= 4)
    reader.close()
    assert last(msgs, "heliod/p1/availability") == (b"offline", False)
    assert last(msgs, "heliod/p2/availability") == (b"offline", False)
    assert {(t, p) for t, p, _ in msgs[:2]} == {
        ("heliod/p1/availability", b"online"),
        ("heliod/p2/availability", b"online"),
    }


LAST_WILL_SCRIPT = """
import sys, time
from heliod.adapters.mqtt import MqttPublisher, MqttSettings
pub = MqttPublisher(MqttSettings(url=sys.argv[1], client_id="dying"), "heliod", ["p1"])
pub.start()
assert pub.wait_connected(10)
print("ready", flush=True)
time.sleep(60)
"""


def test_last_will_says_offline_when_heliod_dies(broker: Broker) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", LAST_WILL_SCRIPT, broker.url],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        os.kill(proc.pid, signal.SIGKILL)  # no DISCONNECT: the broker must publish the will
        proc.wait(10)
        late = Collector(broker, "heliod/p1/availability", "late-reader")
        msgs = late.wait_for(lambda m: last(m, "heliod/p1/availability") == (b"offline", True))
        late.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert last(msgs, "heliod/p1/availability") == (b"offline", True)


def test_home_assistant_discovery(broker: Broker) -> None:
    plant = PlantInfo("brassemonte", "Centrale de Brassemonte", "SLR", Decimal("1.5"))
    pub = MqttPublisher(MqttSettings(url=broker.url), "heliod", [plant], ha_discovery=True)
    pub.start()
    try:
        assert pub.wait_connected(10)
        # Subscribe only once the broker holds the configs, so they come as retained.
        assert pub.flush(10)
        ha = Collector(broker, "homeassistant/#", "home-assistant")
        msgs = ha.wait_for(lambda m: len(m) >= 5)
        ha.close()
    finally:
        pub.stop()
    configs = {t: exact(p) for t, p, retained in msgs if retained}
    base = "homeassistant/sensor/heliod_brassemonte"
    assert set(configs) == {
        f"{base}/{k}/config"
        for k in ("energy", "power", "mwh_completed", "next_mwh_progress", "tokens_minted")
    }
    energy = configs[f"{base}/energy/config"]
    assert energy["device_class"] == "energy"
    assert energy["state_class"] == "total_increasing"
    assert energy["unit_of_measurement"] == "Wh"
    assert energy["state_topic"] == "heliod/brassemonte/state"
    assert energy["availability_topic"] == "heliod/brassemonte/availability"
    assert energy["device"]["name"] == "Centrale de Brassemonte"
    # `object_id` is deprecated by Home Assistant 2025.10 and ignored from 2026.4.
    assert energy["default_entity_id"] == "sensor.heliod_brassemonte_energy"
    assert all("object_id" not in c for c in configs.values())
    assert configs[f"{base}/power/config"]["device_class"] == "power"
    assert configs[f"{base}/tokens_minted/config"]["unit_of_measurement"] == "SLR"
    assert "* 1.5" in configs[f"{base}/tokens_minted/config"]["value_template"]


def test_discovery_off_clears_earlier_configs(broker: Broker) -> None:
    for ha_on in (True, False):
        pub = MqttPublisher(MqttSettings(url=broker.url), "heliod", ["p1"], ha_discovery=ha_on)
        pub.start()
        assert pub.wait_connected(10)
        pub.stop()
    ha = Collector(broker, "homeassistant/#", "home-assistant")
    msgs = ha.wait_for(lambda m: False, timeout=1.0)
    ha.close()
    assert msgs == []  # empty retained payloads deleted every config


def test_empty_prefix_publishes_nothing(broker: Broker) -> None:
    reader = Collector(broker, "#")
    pub = MqttPublisher(MqttSettings(url=broker.url), "", ["p1"], ha_discovery=True)
    pub.start()
    pub.publish_state("p1", STATE)
    pub.stop()
    msgs = reader.wait_for(lambda m: False, timeout=1.0)
    reader.close()
    assert not pub.enabled
    assert msgs == []


def test_to_json_refuses_floats_and_nan() -> None:
    assert to_json({"a": Decimal("1E+3"), "b": [1, None, True]}) == '{"a":1000,"b":[1,null,true]}'
    with pytest.raises(TypeError):
        to_json({"energy_wh": 0.1})
    with pytest.raises(ValueError):
        to_json(Decimal("NaN"))


def test_collector_is_subscribed_once_built(broker: Broker) -> None:
    # The helper's own contract, behind test_mint_event_without_credits: a message that is
    # not retained, published right after the Collector is built, must reach it.
    pub = Publisher(broker)
    try:
        for i in range(10):
            reader = Collector(broker, "probe/#", f"probe-{i}")
            pub.publish([("probe/x", str(i).encode())])
            got = reader.wait_for(lambda m: len(m) >= 1, timeout=2.0)
            reader.close()
            assert [p for _, p, _ in got] == [str(i).encode()]
    finally:
        pub.close()


def test_stop_shares_one_deadline_across_plants(broker: Broker) -> None:
    plants = ["p1", "p2", "p3", "p4"]
    pub = MqttPublisher(MqttSettings(url=broker.url), "heliod", plants)
    pub.start()
    assert pub.wait_connected(10)
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGSTOP)  # connected, but no PUBACK will ever come
    try:
        started = time.monotonic()
        pub.stop(timeout=1.0)
        took = time.monotonic() - started
    finally:
        broker.proc.send_signal(signal.SIGCONT)
    # Before the fix each plant waited its own timeout: 4 s here.
    assert took < 2.0, took


def test_goal_event_as_pushed_at_qos1_not_retained(broker: Broker) -> None:
    reader = Collector(broker, "heliod/+/event")
    pub = MqttPublisher(MqttSettings(url=broker.url), "heliod", ["brassemonte"])
    pub.start()
    body = {
        "event": "milestone",
        "id": "brassemonte:milestone:100",
        "plant": "brassemonte",
        "mwh": 100,
        "title": "100 MWh",
        "reached_at": "2024-06-01T10:15:07Z",
    }
    try:
        assert pub.wait_connected(10)
        pub.publish_event("brassemonte", body)
        msgs = reader.wait_for(lambda m: len(m) >= 1)
    finally:
        reader.close()
        pub.stop()
    assert [(t, exact(p), r) for t, p, r in msgs] == [("heliod/brassemonte/event", body, False)]


def test_co2_sensor_with_its_source_and_removed_without_impact(broker: Broker) -> None:
    base = "homeassistant/sensor/heliod_p1"
    plant = PlantInfo("p1", "P1", "SLR", Decimal(1), co2_source="ADEME Base Carbone")
    pub = MqttPublisher(MqttSettings(url=broker.url), "heliod", [plant], ha_discovery=True)
    pub.start()
    assert pub.wait_connected(10)
    assert pub.flush(10)
    pub.stop()
    ha = Collector(broker, f"{base}/co2_avoided/config", "home-assistant")
    (_topic, payload, retained), *_ = ha.wait_for(lambda m: len(m) >= 1)
    ha.close()
    co2 = exact(payload)
    assert retained
    assert co2["value_template"] == "{{ value_json.co2_avoided_kg }}"
    assert (co2["unit_of_measurement"], co2["device_class"]) == ("kg", "weight")
    assert co2["json_attributes_topic"] == "heliod/p1/state"
    assert "value_json.co2_source" in co2["json_attributes_template"]
    # The same plant without [plants.impact]: the sensor's config is deleted.
    plain = PlantInfo("p1", "P1", "SLR", Decimal(1))
    pub = MqttPublisher(MqttSettings(url=broker.url), "heliod", [plain], ha_discovery=True)
    pub.start()
    assert pub.wait_connected(10)
    assert pub.flush(10)
    pub.stop()
    ha = Collector(broker, f"{base}/co2_avoided/config", "home-assistant")
    assert ha.wait_for(lambda m: False, timeout=1.0) == []
    ha.close()
