"""Each example configuration in config/ fed the payload its documentation shows."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from heliod.adapters.mqtt import DeviceSettings, FieldSpec, MqttSettings, MqttSubscriber
from heliod.daemon.config.loader import load_config
from tests.adapters.mqtt.broker import Broker, Publisher
from tests.adapters.mqtt.conftest import RecordingSink

CONFIG = Path(__file__).resolve().parents[3] / "config"

# (config file, device id, topic, payload as the documentation shows it, expected fields,
#  expected timestamp or None for the arrival time)
EXAMPLES = [
    (
        # Tasmota docs, devices/Sonoff-Pow-R2.md: tele/pow1/SENSOR
        "mqtt-tasmota.toml",
        "pow1",
        "tele/pow1/SENSOR",
        b'{"Time":"2018-02-15T17:37:10","ENERGY":{"TotalStartTime":"2018-11-14T18:39:40",'
        b'"Total":6.294,"Yesterday":5.340,"Today":0.954,"Period":217,"Power":2635,'
        b'"ApparentPower":2650,"ReactivePower":282,"Factor":0.99,"Voltage":227,'
        b'"Current":11.661}}',
        {"energy_wh": "6294.000", "power_w": "2635.000", "voltage": "227.000"},
        datetime(2018, 2, 15, 16, 37, 10, tzinfo=UTC),  # 17:37:10 in Paris, winter time
    ),
    (
        # Shelly Gen2 EMData status (emdata:0), a Pro 3EM capture; counters in Wh
        "mqtt-shelly-gen2-em.toml",
        "grid-meter",
        "shellypro3em-c8f09e8842a4/status/emdata:0",
        b'{"id":0,"a_total_act_energy":0.06,"a_total_act_ret_energy":0,'
        b'"b_total_act_energy":0.06,"b_total_act_ret_energy":0.01,'
        b'"c_total_act_energy":26289.44,"c_total_act_ret_energy":131881.85,'
        b'"total_act":26289.57,"total_act_ret":131881.86}',
        {"energy_wh": "131881.860", "import_wh": "26289.570"},
        None,
    ),
    (
        # Shelly Gen2 EM status (em:0): total_act_power in W
        "mqtt-shelly-gen2-em.toml",
        "grid-meter-power",
        "shellypro3em-c8f09e8842a4/status/em:0",
        b'{"id":0,"a_current":0.027,"a_voltage":0,"a_act_power":0,"a_aprt_power":0,'
        b'"a_pf":1,"a_freq":198,"b_current":0.027,"b_voltage":0,"b_act_power":0,'
        b'"b_aprt_power":0,"b_pf":1,"b_freq":160.7,"c_current":0.476,"c_voltage":228.3,'
        b'"c_act_power":-18,"c_aprt_power":108.7,"c_pf":0.55,"c_freq":50,"n_current":null,'
        b'"total_current":0.531,"total_act_power":-18.017,"total_aprt_power":108.708}',
        {"power_w": "-18.017"},
        None,
    ),
    (
        # OpenDTU docs/MQTT_Topics.md: [serial]/0/yieldtotal, a bare number in kWh
        "mqtt-opendtu.toml",
        "hm800",
        "solar/114172220003/0/yieldtotal",
        b"1532.846",
        {"energy_wh": "1532846.000"},
        None,
    ),
    (
        # OpenDTU docs/MQTT_Topics.md: [serial]/0/power, a bare number in W
        "mqtt-opendtu.toml",
        "hm800-power",
        "solar/114172220003/0/power",
        b"612.4",
        {"power_w": "612.400"},
        None,
    ),
]


def devices_of(config_file: str) -> tuple[DeviceSettings, ...]:
    """The MQTT devices of an example config, validated by the daemon's own loader."""
    config = load_config(CONFIG / config_file, env={})
    return tuple(
        DeviceSettings(
            id=d.id,
            topic=d.topic,
            qos=d.qos,
            fields={name: FieldSpec(f.path, f.unit) for name, f in d.fields.items()},
            timestamp_path=d.timestamp.path if d.timestamp else None,
            timezone=plant.timezone,
        )
        for plant in config.plants
        for d in plant.devices
        if d.protocol == "mqtt"
    )


@pytest.mark.parametrize(
    ("config_file", "device", "topic", "payload", "fields", "ts"),
    EXAMPLES,
    ids=[e[1] for e in EXAMPLES],
)
def test_documented_payload_becomes_the_exact_reading(
    broker: Broker,
    sink: RecordingSink,
    config_file: str,
    device: str,
    topic: str,
    payload: bytes,
    fields: dict[str, str],
    ts: datetime | None,
) -> None:
    settings = MqttSettings(
        url=broker.url, client_id="heliod-example", devices=devices_of(config_file)
    )
    sub = MqttSubscriber(settings, sink)
    sub.start()
    pub = Publisher(broker)
    try:
        assert sub.wait_connected(10)
        time.sleep(0.3)
        before = datetime.now(UTC)
        pub.publish([(topic, payload)])
        readings = sink.wait_for(1)
        after = datetime.now(UTC)
    finally:
        pub.close()
        sub.stop()
    assert len(readings) == 1
    reading = readings[0]
    assert reading.device == device
    assert {k: str(v) for k, v in reading.fields.items()} == fields
    assert all(isinstance(v, Decimal) for v in reading.fields.values())
    if ts is None:
        assert before <= reading.ts <= after  # arrival time
    else:
        assert reading.ts == ts
    assert sub.bad_payloads == {}
