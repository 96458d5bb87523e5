"""The subscriber against a real Mosquitto: garbage, broker and heliod restarts, store failures."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from heliod.adapters.mqtt import (
    MAX_PAYLOAD_BYTES,
    DeviceSettings,
    FieldSpec,
    MqttSettings,
    MqttSubscriber,
)
from tests.adapters.mqtt.broker import Broker, Publisher
from tests.adapters.mqtt.conftest import RecordingSink

METER = DeviceSettings(
    id="meter1",
    topic="tele/+/SENSOR",
    fields={
        "energy_wh": FieldSpec("ENERGY.Total", "kWh"),
        "power_w": FieldSpec("ENERGY.Power", "W"),
    },
    timestamp_path="seq",
)


def settings(broker: Broker, client_id: str = "heliod-test") -> MqttSettings:
    return MqttSettings(
        url=broker.url,
        client_id=client_id,
        devices=(METER,),
        reconnect_min_delay=1,
        reconnect_max_delay=1,
    )


def _json(i: int) -> bytes:
    return (
        f'{{"seq":{1_700_000_000 + i},"ENERGY":{{"Total":{Decimal(i) / 1000},"Power":5}}}}'.encode()
    )


def msg(i: int) -> tuple[str, bytes]:
    return "tele/meter1/SENSOR", _json(i)


def seqs(sink: RecordingSink) -> list[int]:
    return [int(r.ts.timestamp()) - 1_700_000_000 for r in sink.readings]


def test_messages_become_exact_readings(broker: Broker, sink: RecordingSink) -> None:
    sub = MqttSubscriber(settings(broker), sink)
    sub.start()
    try:
        assert sub.wait_connected(10)
        time.sleep(0.3)
        pub = Publisher(broker)
        pub.publish(
            [("tele/meter1/SENSOR", b'{"seq":1700000001,"ENERGY":{"Total":6.294,"Power":2635}}')]
        )
        readings = sink.wait_for(1)
        pub.close()
    finally:
        sub.stop()
    assert len(readings) == 1
    r = readings[0]
    assert r.device == "meter1"
    assert r.fields == {"energy_wh": Decimal("6294.000"), "power_w": Decimal("2635.000")}
    assert str(r.fields["energy_wh"]) == "6294.000"
    assert r.ts.timestamp() == 1_700_000_001
    assert sub.stats.acked == 1


GARBAGE: list[bytes] = [
    b"not json",
    b"",
    b"\xff\xfe\x00garbage",
    b'{"seq":1700000000,"ENERGY":{"Power":5}}',  # missing key
    b'{"seq":1700000000,"ENERGY":{"Total":"6.294","Power":5}}',  # string
    b'{"seq":1700000000,"ENERGY":{"Total":NaN,"Power":5}}',
    b'{"seq":1700000000,"ENERGY":{"Total":Infinity,"Power":5}}',
    b'{"seq":1700000000,"ENERGY":{"Total":-Infinity,"Power":5}}',
    b'{"seq":1700000000,"ENERGY":{"Total":-0.001,"Power":5}}',  # negative counter
    b'{"seq":1700000000,"ENERGY":{"Total":1e13,"Power":5}}',  # 10^16 Wh: absurd
    b'{"seq":1700000000,"ENERGY":{"Total":1,"Total":2,"Power":5}}',  # duplicate key
    b'{"seq":1700000000,"ENERGY":{"Total":null,"Power":5}}',
    b'{"seq":1700000000,"ENERGY":{"Total":true,"Power":5}}',
    b'{"seq":"yesterday","ENERGY":{"Total":1,"Power":5}}',  # bad timestamp
    b"[" * 60_000,  # nested too deeply
    b'{"seq":1700000000,"ENERGY":{"Total":1,"Power":5},"pad":"' + b"x" * 3_000_000 + b'"}',
]


def test_garbage_interleaved_with_good_messages_changes_nothing(
    broker: Broker, sink: RecordingSink
) -> None:
    sub = MqttSubscriber(settings(broker), sink)
    sub.start()
    pub = Publisher(broker)
    try:
        assert sub.wait_connected(10)
        time.sleep(0.3)
        stream: list[tuple[str, bytes]] = []
        for i in range(1, 41):
            stream.append(msg(i))
            stream.append(("tele/meter1/SENSOR", GARBAGE[i % len(GARBAGE)]))
        stream += [("tele/meter1/SENSOR", g) for g in GARBAGE]
        pub.publish(stream)
        sink.wait_for(40)
        deadline = time.monotonic() + 10
        while sub.stats.acked < len(stream) - 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pub.close()
        sub.stop()
    assert seqs(sink) == list(range(1, 41))
    assert [r.fields["energy_wh"] for r in sink.readings] == [Decimal(i) for i in range(1, 41)]
    # The 3 MB payload (3 times in the stream) is over the Maximum Packet Size heliod
    # announces: the broker discards it and heliod never sees it.
    oversized = sum(1 for _, p in stream if len(p) > MAX_PAYLOAD_BYTES)
    assert oversized == 3
    assert sub.bad_payloads == {"meter1": 40 + len(GARBAGE) - oversized}
    reasons = {reason for (_dev, reason) in sub.bad_payload_reasons}
    assert reasons == {
        "not_json",
        "missing_key",
        "not_a_number",
        "non_finite_literal",
        "negative",
        "absurd",
        "duplicate_key",
        "bad_timestamp",
    }
    # Garbage is acknowledged too, or the broker would redeliver it forever.
    assert sub.stats.acked == len(stream) - oversized
    # Counted from the packet ids skipped: the last message of the stream is one of them,
    # and no later id shows its gap.
    assert sub.stats.broker_discarded == oversized - 1


def test_broker_restart_mid_stream_loses_no_qos1_message(
    broker: Broker, sink: RecordingSink
) -> None:
    n = 3000
    sub = MqttSubscriber(settings(broker), sink)
    sub.start()
    pub = Publisher(broker)
    try:
        assert sub.wait_connected(10)
        time.sleep(0.3)

        def publish_stream() -> None:
            for k in range(0, n, 100):
                pub.publish([msg(i) for i in range(k, k + 100)], timeout=60)

        stream = threading.Thread(target=publish_stream)
        stream.start()
        sink.wait_for(n // 3)
        broker.restart()  # SIGTERM: mosquitto writes its persistence file, then comes back
        stream.join(60)
        sink.wait_until(lambda rs: len({r.ts for r in rs}) >= n, timeout=60)
        assert sub.wait_connected(10)
    finally:
        pub.close()
        sub.stop()
    got = seqs(sink)
    assert set(got) == set(range(n)), f"missing: {sorted(set(range(n)) - set(got))[:20]}"
    assert sub.stats.connects >= 2
    # Redeliveries of committed messages are recognised; the test publisher's own
    # resends (PUBACKs it missed) are new messages to the broker and may remain.
    print(f"{len(got) - n} duplicates stored, {sub.stats.duplicates_skipped} redeliveries skipped")


def test_heliod_restart_gets_what_was_published_while_it_was_down(
    broker: Broker, sink: RecordingSink
) -> None:
    first = MqttSubscriber(settings(broker), sink)
    first.start()
    pub = Publisher(broker)
    try:
        assert first.wait_connected(10)
        time.sleep(0.3)
        pub.publish([msg(i) for i in range(100)])
        sink.wait_for(100)
        first.stop()
        pub.publish([msg(i) for i in range(100, 600)])  # heliod is down
        second = MqttSubscriber(settings(broker), sink)
        second.start()
        try:
            sink.wait_for(600)
        finally:
            second.stop()
    finally:
        pub.close()
    assert seqs(sink) == list(range(600))  # each exactly once, in order


def test_store_failure_means_no_ack_and_redelivery(broker: Broker, sink: RecordingSink) -> None:
    class BrokenStore:
        calls = 0

        def __call__(self, readings: object) -> None:
            self.calls += 1
            raise OSError("disk I/O error")

    broken = BrokenStore()
    crashed = MqttSubscriber(settings(broker), broken)
    crashed.start()
    pub = Publisher(broker)
    try:
        assert crashed.wait_connected(10)
        time.sleep(0.3)
        pub.publish([msg(i) for i in range(10)])
        deadline = time.monotonic() + 10
        while broken.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert broken.calls >= 1
        assert crashed.stats.acked == 0
        crashed.stop()  # as if heliod died while its store was failing
        restarted = MqttSubscriber(settings(broker), sink)
        restarted.start()
        try:
            sink.wait_for(10)
        finally:
            restarted.stop()
    finally:
        pub.close()
    assert seqs(sink) == list(range(10))


def test_transient_store_failure_is_retried_in_place(broker: Broker, sink: RecordingSink) -> None:
    failures = [OSError("database is locked")]

    def flaky(readings: list) -> None:  # type: ignore[type-arg]
        if failures:
            raise failures.pop()
        sink(readings)

    sub = MqttSubscriber(settings(broker), flaky)
    sub.start()
    pub = Publisher(broker)
    try:
        assert sub.wait_connected(10)
        time.sleep(0.3)
        pub.publish([msg(i) for i in range(5)])
        sink.wait_for(5)
    finally:
        pub.close()
        sub.stop()
    assert seqs(sink) == list(range(5))
    assert sub.stats.commit_failures == 1
    assert sub.stats.acked == 5
    assert sub.last_error is None  # the store recovered: nothing to report any more


def test_committed_but_unacked_message_is_not_stored_twice(
    broker: Broker, sink: RecordingSink
) -> None:
    restarted: list[bool] = []

    def store_then_lose_connection(readings: list) -> None:  # type: ignore[type-arg]
        sink(readings)
        if not restarted:
            restarted.append(True)
            broker.restart()  # the connection dies after the commit, before the PUBACK
            time.sleep(0.3)

    sub = MqttSubscriber(settings(broker), store_then_lose_connection)
    sub.start()
    pub = Publisher(broker)
    try:
        assert sub.wait_connected(10)
        time.sleep(0.3)
        pub.publish([msg(i) for i in range(20)])
        sink.wait_for(20)
        time.sleep(2.5)  # reconnect (1 s backoff) and redelivery
    finally:
        pub.close()
        sub.stop()
    assert seqs(sink) == list(range(20))
    assert sub.stats.duplicates_skipped >= 1


def test_stopping_in_the_middle_of_a_backlog_stores_each_message_once(
    broker: Broker, sink: RecordingSink
) -> None:
    n = 6000
    first = MqttSubscriber(settings(broker), sink, batch_max=500)
    first.start()
    assert first.wait_connected(10)
    first.stop()  # the session now exists; what follows queues for it
    pub = Publisher(broker)
    try:
        pub.publish([msg(i) for i in range(n)])
        for _ in range(3):  # stop while the broker is still sending the backlog
            target = len(sink.readings) + 1
            sub = MqttSubscriber(settings(broker), sink, batch_max=500)
            sub.start()
            sink.wait_for(target, timeout=10)
            sub.stop()
        last = MqttSubscriber(settings(broker), sink)
        last.start()
        sink.wait_until(lambda rs: len({r.ts for r in rs}) >= n, timeout=30)
        time.sleep(0.5)
        last.stop()
    finally:
        pub.close()
    # Every PUBACK of a clean stop reaches the broker: nothing comes back a second time.
    assert seqs(sink) == list(range(n))


def test_overlapping_filters_give_one_reading_per_device(
    broker: Broker, sink: RecordingSink
) -> None:
    # Mosquitto sends one copy per matching subscription; without Subscription Identifiers
    # each copy went to both devices: 4 readings instead of 2.
    pow1 = DeviceSettings(
        id="pow1", topic="tele/pow1/SENSOR", fields={"power_w": FieldSpec("ENERGY.Power", "W")}
    )
    both = MqttSettings(url=broker.url, client_id="heliod-overlap", devices=(METER, pow1))
    sub = MqttSubscriber(both, sink)
    sub.start()
    try:
        assert sub.wait_connected(10)
        pub = Publisher(broker)
        pub.publish([("tele/pow1/SENSOR", _json(1)), ("tele/meter9/SENSOR", _json(2))])
        sink.wait_for(3)
        time.sleep(0.5)  # time for the extra copies, were they routed to both devices
        pub.close()
    finally:
        sub.stop()
    assert sorted(r.device for r in sink.readings) == ["meter1", "meter1", "pow1"]
