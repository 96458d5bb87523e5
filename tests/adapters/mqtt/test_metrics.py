"""The running daemon exports the MQTT subscriber's refused messages as Prometheus counters."""

from __future__ import annotations

import time
from pathlib import Path

from heliod.daemon.boot.build import build_runtime
from heliod.daemon.boot.runtime import Options
from heliod.daemon.config import load_config
from tests.adapters.mqtt.broker import Broker, Publisher
from tests.adapters.mqtt.test_identifiers import older_session
from tests.adapters.mqtt.test_state import opendtu_config
from tests.support import free_port


def test_bad_payloads_are_counted_by_device_and_reason(broker: Broker, tmp_path: Path) -> None:
    port = free_port()
    config = load_config(opendtu_config(tmp_path, broker), env={})
    runtime = build_runtime(config, options=Options(listen=("127.0.0.1", port)))
    sample = runtime.metrics.registry.get_sample_value

    def bad(device: str, reason: str) -> float | None:
        value: float | None = sample(
            "heliod_mqtt_bad_payloads_total", {"device": device, "reason": reason}
        )
        return value

    runtime.start()
    try:
        deadline = time.monotonic() + 15
        pub = Publisher(broker)
        # Published until seen: the subscriber may not have subscribed yet.
        while bad("hm800", "not_json") is None and time.monotonic() < deadline:
            pub.publish([("solar/114172220003/0/yieldtotal", b"garbage")])
            time.sleep(0.3)
        pub.publish([("solar/114172220003/0/power", b"NaN")])
        while bad("hm800-power", "non_finite_literal") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        pub.close()
        assert (bad("hm800", "not_json") or 0) >= 1
        assert bad("hm800-power", "non_finite_literal") == 1
        assert bad("hm800", "missing_key") is None
    finally:
        assert runtime.stop()


def test_messages_for_no_device_are_counted(broker: Broker, tmp_path: Path) -> None:
    # A subscription left in heliod's session by another tool (or a removed device).
    older_session(broker, ["junk/#"], client_id="heliod-gateway")
    pub = Publisher(broker)
    pub.publish([("junk/a", b"1"), ("junk/b", b"2"), ("junk/a", b"3")])
    pub.close()
    config = load_config(opendtu_config(tmp_path, broker), env={})
    runtime = build_runtime(config, options=Options(listen=("127.0.0.1", free_port())))
    sample = runtime.metrics.registry.get_sample_value
    labels = {"reason": "no_device"}
    runtime.start()
    try:
        deadline = time.monotonic() + 15
        while sample("heliod_mqtt_unrouted_messages_total", labels) != 3:
            assert time.monotonic() < deadline, "the unrouted messages were not counted"
            time.sleep(0.1)
    finally:
        assert runtime.stop()
