"""Messages over the announced Maximum Packet Size never reach heliod, and never stall it."""

from __future__ import annotations

from dataclasses import replace

from heliod.adapters.mqtt import MqttSubscriber
from heliod.adapters.mqtt.quota import SkippedIds
from tests.adapters.mqtt.broker import Broker, Publisher
from tests.adapters.mqtt.conftest import RecordingSink
from tests.adapters.mqtt.test_subscriber import msg, seqs, settings

TOPIC = "tele/meter1/SENSOR"


def test_oversized_messages_are_discarded_by_the_broker_without_stalling_heliod(
    broker: Broker, sink: RecordingSink
) -> None:
    # batch_max 20: a Receive Maximum of 40. Mosquitto keeps a slot of that window for
    # each message it discards: after a run of 40 it sends nothing more on the connection.
    sub = MqttSubscriber(
        replace(settings(broker), max_packet_size=4096), sink, batch_max=20, idle_reconnect_s=1
    )
    pub = Publisher(broker)
    try:
        sub.start()
        assert sub.wait_connected(10)
        pub.publish([msg(0)])
        sink.wait_for(1)
        pub.publish([(TOPIC, b"x" * 5000)] * 150 + [msg(i) for i in range(1, 50)])
        sink.wait_until(lambda rs: len({r.ts for r in rs}) >= 50, timeout=30)
        # Shorter runs, each revealed by the message after it.
        for i in range(50, 60):
            pub.publish([(TOPIC, b"x" * 5000)] * 10 + [msg(i)])
        sink.wait_until(lambda rs: len({r.ts for r in rs}) >= 60, timeout=30)
    finally:
        pub.close()
        sub.stop()
    assert sorted(set(seqs(sink))) == list(range(60))
    # Before: heliod announced no maximum, took every 5,000-byte message and refused it.
    assert sub.bad_payloads == {}
    assert sub.stats.connects >= 2  # the quiet connection was renewed
    # The 100 of the short runs are counted; those of the long one partly (the ids it
    # skipped before the stall and after the renewal, not those discarded in between).
    assert sub.stats.broker_discarded >= 100


def test_skipped_packet_ids_are_counted() -> None:
    ids = SkippedIds(receive_max=40)
    assert ids.seen(7, dup=False) == 0  # the first id of a connection only sets the start
    assert ids.seen(8, dup=False) == 0
    assert ids.seen(12, dup=False) == 3  # 9, 10, 11 skipped
    assert ids.seen(65534, dup=False) == 0  # a jump past the window: not discarded messages
    assert ids.seen(2, dup=False) == 2  # 65535 and 1 skipped: the ids wrap after 65535
    assert ids.seen(5, dup=True) == 0  # a redelivery: its gap was counted when first sent
    assert ids.seen(11, dup=False) == 5  # 6..10
    assert (ids.on_connection, ids.total) == (10, 10)
    ids.connected()
    assert ids.seen(30, dup=False) == 0  # a new connection starts from its first id again
    assert (ids.on_connection, ids.total) == (0, 10)
