"""Messages that carry no Subscription Identifier, or one heliod no longer gives, are not lost.

Each way a message can reach heliod without an identifier, reproduced with a real Mosquitto:
queued under a subscription made without one (MQTT 5 or 3.1.1 session), from a broker that
announces no identifier support, and through a relay that drops them. Before the fix every
one of these messages was acknowledged and dropped without a trace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from heliod.adapters.mqtt import DeviceSettings, FieldSpec, MqttSettings, MqttSubscriber
from heliod.adapters.mqtt.routing import ID_BASE, ID_MAX, filters_overlap, subscription_ids
from tests.adapters.mqtt.broker import Broker, Publisher
from tests.adapters.mqtt.conftest import RecordingSink
from tests.adapters.mqtt.proxy import Relay
from tests.adapters.mqtt.test_subscriber import METER, _json, msg, seqs

CLIENT_ID = "heliod-ids"
POW1 = DeviceSettings(
    id="pow1", topic="tele/pow1/SENSOR", fields={"power_w": FieldSpec("ENERGY.Power", "W")}
)
OPENDTU = DeviceSettings(
    id="hm800", topic="solar/+/0/yieldtotal", fields={"energy_wh": FieldSpec("", "kWh")}
)


def settings(url: str, *devices: DeviceSettings) -> MqttSettings:
    return MqttSettings(
        url=url,
        client_id=CLIENT_ID,
        devices=devices or (METER,),
        reconnect_min_delay=1,
        reconnect_max_delay=1,
    )


def older_session(
    broker: Broker, filters: list[str], protocol: int = mqtt.MQTTv5, client_id: str = CLIENT_ID
) -> None:
    """Heliod's session as a client that subscribes without identifiers left it."""
    if protocol == mqtt.MQTTv5:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=protocol)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", broker.port, clean_start=True, properties=props)
    else:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id, protocol=protocol, clean_session=False
        )
        c.connect("127.0.0.1", broker.port)
    subscribed = threading.Event()
    c.on_subscribe = lambda *_: subscribed.set()
    c.loop_start()
    c.subscribe([(f, 1) for f in filters])
    assert subscribed.wait(10)
    c.disconnect()
    c.loop_stop()


def drain(sub: MqttSubscriber, sink: RecordingSink, n: int, acked: int | None = None) -> None:
    """Run `sub` until `n` readings are stored and `acked` messages acknowledged."""
    sub.start()
    try:
        sink.wait_for(n)
        deadline = time.monotonic() + 10
        while sub.stats.acked < (n if acked is None else acked) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # time for anything more (copies) to arrive
    finally:
        sub.stop()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt311"])
def test_messages_queued_under_a_subscription_without_identifier_are_stored(
    broker: Broker, sink: RecordingSink, protocol: int
) -> None:
    # An older heliod, or another tool with heliod's client id, made the session; the
    # messages queued for it while heliod was away carry no identifier.
    older_session(broker, [METER.topic], protocol)
    pub = Publisher(broker)
    pub.publish([msg(i) for i in range(200)])
    pub.close()
    sub = MqttSubscriber(settings(broker.url), sink)
    drain(sub, sink, 200)
    assert seqs(sink) == list(range(200))  # before the fix: [] and 200 acknowledged
    assert sub.stats.acked == 200
    assert sub.unrouted == {}


def through_relay(
    broker: Broker, sink: RecordingSink, relay: Relay, *devices: DeviceSettings
) -> MqttSubscriber:
    """A subscriber behind `relay` fed 50 messages for meter1 and one for pow1; stopped."""
    sub = MqttSubscriber(settings(relay.url, *devices), sink)
    pub = Publisher(broker)
    try:
        sub.start()
        assert sub.wait_connected(10)
        pub.publish([msg(i) for i in range(50)] + [("tele/pow1/SENSOR", _json(50))])
        sink.wait_for(50 + len(devices))
        time.sleep(0.3)
    finally:
        pub.close()
        sub.stop()
        relay.close()
    assert seqs(sink)[:50] == list(range(50))
    assert sub.unrouted == {}
    return sub


def test_broker_announcing_no_identifiers(broker: Broker, sink: RecordingSink) -> None:
    relay = Relay(broker.port, announce_no_ids=True)
    through_relay(broker, sink, relay, METER, POW1)
    # heliod took its own path for such a broker: one SUBSCRIBE for both filters, no id.
    assert (relay.seen.subscribes, relay.seen.subscribes_with_ids) == (1, 0)
    # The two filters overlap on tele/pow1/SENSOR: the broker sends a copy for each, and
    # without identifiers each copy goes to both devices (docs/mqtt.md).
    assert Counter(r.device for r in sink.readings) == {"meter1": 52, "pow1": 2}


def test_relay_that_drops_identifiers(broker: Broker, sink: RecordingSink) -> None:
    relay = Relay(broker.port, strip_ids=True)
    through_relay(broker, sink, relay, METER, POW1)
    assert relay.seen.subscribes_with_ids == 2  # heliod asked for them, none came back
    assert relay.seen.ids_stripped == 52
    assert Counter(r.device for r in sink.readings) == {"meter1": 52, "pow1": 2}


def test_filters_that_do_not_overlap_need_no_identifiers(
    broker: Broker, sink: RecordingSink
) -> None:
    relay = Relay(broker.port)
    through_relay(broker, sink, relay, METER, OPENDTU)
    assert (relay.seen.subscribes, relay.seen.subscribes_with_ids) == (1, 0)
    assert [r.device for r in sink.readings] == ["meter1"] * 51


def test_which_filters_overlap() -> None:
    assert filters_overlap("tele/+/SENSOR", "tele/pow1/SENSOR")
    assert filters_overlap("tele/#", "tele/pow1/SENSOR")
    assert filters_overlap("a/#", "a")  # "a/#" matches "a" too
    assert filters_overlap("+/b", "a/+")
    assert filters_overlap("#", "x/y")
    assert not filters_overlap("tele/+/SENSOR", "solar/+/0/yieldtotal")
    assert not filters_overlap("tele/+/SENSOR", "tele/+/STATE")
    assert not filters_overlap("a/b", "a/b/c")
    assert not filters_overlap("a/+", "a/b/c")
    assert not filters_overlap("a/#", "b")


def test_identifiers_survive_a_configuration_change(broker: Broker, sink: RecordingSink) -> None:
    # Before: identifiers were 1, 2, … in the order of the filters, so a new device whose
    # filter sorts first took the identifier of `tele/+/SENSOR`, and the messages queued
    # for that filter during the restart went nowhere.
    first = MqttSubscriber(settings(broker.url, METER, POW1), sink)
    first.start()
    assert first.wait_connected(10)
    first.stop()
    pub = Publisher(broker)
    pub.publish([msg(i) for i in range(100)])  # queued while heliod restarts
    pub.close()
    sub = MqttSubscriber(settings(broker.url, METER, POW1, OPENDTU), sink)
    drain(sub, sink, 100)
    assert seqs(sink) == list(range(100))
    assert sub.unrouted == {}


def test_messages_for_no_device_are_counted_and_logged_once_per_topic(
    broker: Broker, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    # The session holds a subscription no configured device has (another tool's, or a
    # device since removed): its messages are acknowledged, counted and logged.
    older_session(broker, [METER.topic, "junk/#"])
    pub = Publisher(broker)
    pub.publish([("junk/a", b"1")] * 5 + [("junk/b", b"2")] * 3 + [msg(i) for i in range(10)])
    pub.close()
    sub = MqttSubscriber(settings(broker.url), sink)
    with caplog.at_level(logging.WARNING, logger="heliod.adapters.mqtt"):
        drain(sub, sink, 10, acked=18)
    assert seqs(sink) == list(range(10))
    assert sub.stats.acked == 18
    assert sub.unrouted == {"no_device": 8}
    lines = [r.getMessage() for r in caplog.records if "matches no device" in r.getMessage()]
    assert len(lines) == 2
    assert "junk/a" in lines[0]
    assert "junk/b" in lines[1]


def test_a_removed_filter_keeps_sending_copies_that_are_counted(
    broker: Broker, sink: RecordingSink
) -> None:
    # pow1 is removed from the configuration; its subscription stays in the session and
    # the broker keeps sending a copy for it of every message on tele/pow1/SENSOR.
    before = MqttSubscriber(settings(broker.url, METER, POW1), sink)
    before.start()
    assert before.wait_connected(10)
    before.stop()
    after = MqttSubscriber(settings(broker.url, METER), sink)
    after.start()
    pub = Publisher(broker)
    try:
        assert after.wait_connected(10)
        pub.publish([("tele/pow1/SENSOR", _json(i)) for i in range(5)])
        sink.wait_for(5)
        deadline = time.monotonic() + 10
        while after.stats.acked < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pub.close()
        after.stop()
    # One reading per message for meter1, whose filter also matches; pow1's copies are
    # neither handed to meter1 (a duplicate) nor silent.
    assert [r.device for r in sink.readings] == ["meter1"] * 5
    assert after.unrouted == {"removed_filter": 5}


def test_a_filter_keeps_its_identifier_whatever_else_is_configured() -> None:
    alone = subscription_ids({"tele/+/SENSOR"})
    more = subscription_ids({"a/b", "tele/+/SENSOR", "zz/#"})
    assert alone["tele/+/SENSOR"] == more["tele/+/SENSOR"]
    assert len(set(more.values())) == 3
    assert all(ID_BASE <= n <= ID_MAX for n in more.values())
    # These two have the same CRC-32 residue: the second in order takes the next number.
    clash = subscription_ids({"tele/d379888/SENSOR", "tele/d406452/SENSOR"})
    assert clash["tele/d406452/SENSOR"] == clash["tele/d379888/SENSOR"] + 1
