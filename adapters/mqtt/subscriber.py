"""Device telemetry in: a message is acknowledged to the broker only after its reading is committed.

paho's thread decodes each message and queues it; a worker thread hands batches to the
sink (one call = one durable commit) and only then sends the PUBACKs. A crash between
receipt and commit therefore means redelivery from the broker's persistent session, never
loss. Delivery is at least once: see docs/mqtt.md for when a message can arrive twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from heliod.adapters.errors import AdapterError, PermanentError, RetryableError
from heliod.adapters.mqtt.badpayloads import BadPayloads
from heliod.adapters.mqtt.connection import connack_error, connect_properties, new_client
from heliod.adapters.mqtt.inbound import Inbound, SubscriberStats
from heliod.adapters.mqtt.quota import DeliveryWindow
from heliod.adapters.mqtt.redelivery import Committed, digest
from heliod.adapters.mqtt.routing import Router
from heliod.adapters.mqtt.settings import MqttSettings
from heliod.rewards.readings import Reading

log = logging.getLogger("heliod.adapters.mqtt")

Sink = Callable[[list[Reading]], object]

_MAX_COMMIT_BACKOFF_S = 30.0
# QoS 1 messages are bounded by the Receive Maximum; QoS 0 ones only by this.
_MAX_QUEUED_QOS0 = 50_000
# A connection that received nothing for this long is renewed (adapters/mqtt/quota.py):
# the longest a broker's stall can last. Harmless otherwise: the session is resumed.
IDLE_RECONNECT_S = 120.0
# Unsubscribed from at stop, only for the broker's answer: a filter no device would use.
_SYNC_FILTER = "$heliod/stop"
# Payloads waiting to be decoded by the worker, at most (bytes); past it paho's thread
# decodes them itself and queues only readings, so memory stays bounded whatever the flood.
_MAX_RAW_BYTES = 4 * 1024 * 1024


class MqttSubscriber:
    """Subscribes to every device's topic with a persistent MQTT 5 session and feeds `sink`."""

    def __init__(
        self,
        settings: MqttSettings,
        sink: Sink,
        *,
        batch_max: int = 1000,
        batch_wait_s: float = 0.2,
        bad_payloads: BadPayloads | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        idle_reconnect_s: float = IDLE_RECONNECT_S,
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._bad = bad_payloads if bad_payloads is not None else BadPayloads()
        self._router = Router(settings.devices, self._bad, settings.max_packet_size)
        self._batch_max = batch_max
        self._batch_wait = batch_wait_s
        self._clock = clock
        self._client: mqtt.Client | None = None
        self._worker: threading.Thread | None = None
        self._cond = threading.Condition()
        self._queue: deque[Inbound] = deque()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        # Guards the connection/session counters against acks sent from the worker.
        self._ack_lock = threading.Lock()
        self._conn = 0
        self._session = 0
        self._receive_max = min(65535, 2 * batch_max)
        self._committed = Committed(self._receive_max)  # guarded by _ack_lock
        self._last_rx = 0.0  # monotonic time of the last message received
        self._raw_bytes = 0  # of the payloads queued undecoded (under _cond)
        self._window = DeliveryWindow(self._receive_max, settings.max_packet_size, idle_reconnect_s)
        self._subacks_due = 0  # SUBACKs still awaited on this connection (paho's thread only)
        self.stats = SubscriberStats()
        self.last_error: AdapterError | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background (retrying with backoff) and start the commit worker."""
        if self._client is not None:
            raise RuntimeError("subscriber already started")
        s = self._settings
        client = new_client(s, s.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.connect_async(
            s.host,
            s.port,
            keepalive=s.keepalive,
            clean_start=False,
            # Twice a batch may be unacknowledged: one being committed, the next arriving.
            properties=connect_properties(s.session_expiry_s, s.max_packet_size, self._receive_max),
        )
        self._client = client
        self._worker = threading.Thread(target=self._run, name="mqtt-commit", daemon=True)
        self._worker.start()
        client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and acknowledge what was received, then disconnect cleanly (no last will)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        if self._worker is not None:
            self._worker.join(timeout)
        if self._client is not None:
            self._wait_quiet(deadline)
            self._wait_acks_read(self._client, deadline)
            self._client.disconnect()
            self._client.loop_stop()
        self._connected.clear()
        self._bad.flush()

    def _wait_acks_read(self, client: mqtt.Client, deadline: float) -> None:
        # The broker reads our packets in order: once it answers an UNSUBSCRIBE sent after
        # our last PUBACKs, it has read them. Closing before that loses them whenever the
        # broker then writes to the closed socket (a new message for the session): the
        # reset discards what it had not read, and it sends those messages again.
        answered = threading.Event()
        client.on_unsubscribe = lambda *_: answered.set()
        rc, _mid = client.unsubscribe(_SYNC_FILTER)
        if rc == mqtt.MQTT_ERR_SUCCESS:
            answered.wait(max(0.0, min(2.0, deadline - time.monotonic())))

    def _wait_quiet(self, deadline: float) -> None:
        # Our last PUBACKs let the broker send as many new messages (which we no longer
        # take). Closing the socket with them unread makes the kernel reset the connection,
        # and the broker then loses PUBACKs it had not read yet: those messages would come
        # again, already stored. So let paho read until the broker has nothing left to send.
        quiet_s = 0.2
        end = min(deadline, time.monotonic() + 2.0)  # QoS 0 traffic may never pause
        while time.monotonic() < end and time.monotonic() - self._last_rx < quiet_s:
            time.sleep(0.05)

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and subscribed, False after `timeout` seconds."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected.is_set()

    @property
    def bad_payloads(self) -> dict[str, int]:
        """Refused messages per device since start."""
        return self._bad.by_device

    @property
    def unrouted(self) -> dict[str, int]:
        """Messages acknowledged without reaching any device since start, by reason."""
        return self._bad.unrouted_by_reason

    @property
    def bad_payload_reasons(self) -> dict[tuple[str, str], int]:
        """Refused messages per (device, reason) since start."""
        return self._bad.by_reason

    # -- paho callbacks (paho's network thread) ----------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self.last_error = connack_error(reason)
            log.warning("mqtt: %s", self.last_error)
            return
        self._window.connected()
        with self._ack_lock:
            self._conn += 1
            if not flags.session_present:
                self._session += 1
                self._committed.clear()  # a new session: packet ids start afresh
        if flags.session_present:
            # The broker redelivers every unacknowledged message of the session: drop the
            # queued copies from the old connection, their PUBACK could not be sent anyway.
            with self._cond:
                kept = [m for m in self._queue if m.conn == self._conn or m.qos == 0]
                self._queue = deque(kept)
                self._raw_bytes = sum(len(m.raw[1]) for m in kept if m.raw is not None)
        self.stats.connects += 1
        self.last_error = None
        self._subscribe(client, props)
        log.info(
            "mqtt: connected to %s:%d (session %s)",
            self._settings.host,
            self._settings.port,
            "resumed" if flags.session_present else "new",
        )

    def _subscribe(self, client: mqtt.Client, connack: Any) -> None:
        # Retained messages only when the subscription is new, not on every reconnect.
        subs = [
            (
                flt,
                SubscribeOptions(qos=qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB),
                n,
            )
            for flt, qos, n in self._router.subscriptions()
        ]
        if not subs:
            self._connected.set()
            return
        # Connected once every SUBACK says its filters are granted.
        if (
            not self._router.overlapping
            or getattr(connack, "SubscriptionIdentifierAvailable", 1) == 0
        ):
            # No identifiers needed, or none to be had: then overlapping filters each
            # deliver a copy to every matching device (docs/mqtt.md). One SUBSCRIBE.
            self._subacks_due = 1
            client.subscribe([(flt, opts) for flt, opts, _ in subs])
            return
        # A SUBSCRIBE carries one identifier for all its filters: one packet per filter.
        self._subacks_due = len(subs)
        for flt, opts, n in subs:
            assert n is not None  # overlapping filters have identifiers
            props = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            props.SubscriptionIdentifier = n
            client.subscribe((flt, opts), properties=props)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        refused = [str(code) for code in codes if code.is_failure]
        if refused:
            # Typically the broker's ACL: a person must grant heliod these topics.
            self.last_error = PermanentError(f"mqtt: broker refused subscriptions: {refused}")
            log.error("%s", self.last_error)
        self._subacks_due -= 1
        if self._subacks_due <= 0:
            self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._ack_lock:
            self._conn += 1
        was_up = self._connected.is_set()
        self._connected.clear()
        if self._window.cut_on_purpose():
            log.debug("mqtt: reconnecting to renew the broker's delivery window")
            return
        if self._stopping.is_set() or not was_up:
            return  # a refused CONNACK was logged already, and keeps its PermanentError
        self.last_error = RetryableError(f"mqtt connection lost: {reason}")
        log.warning("mqtt: connection lost (%s), reconnecting with backoff", reason)

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        s = self._settings
        self.last_error = RetryableError(f"mqtt: cannot connect to {s.host}:{s.port}")
        log.warning("%s, retrying with backoff", self.last_error)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._last_rx = time.monotonic()
        if self._stopping.is_set():
            return  # not acknowledged: the broker keeps it for our next session
        qos, payload = msg.qos, msg.payload
        if qos:
            self._window.message(msg.mid, msg.dup)
            self.stats.broker_discarded = self._window.skipped.total
        raw = None
        readings: list[Reading] = []
        try:
            topic = msg.topic
            # paho gives the identifiers as a list, and no attribute when there are none.
            ids = getattr(msg.properties, "SubscriptionIdentifier", ())
            if self._raw_bytes < _MAX_RAW_BYTES:
                # Decoded by the worker: paho's thread goes back to the socket at once.
                raw = (topic, payload, self._clock(), ids)
            else:
                readings = self._router.route(topic, payload, self._clock(), ids)
        except UnicodeDecodeError:
            topic, readings = "", []  # a topic that is not UTF-8 matches no device
            self._bad.unrouted("(not UTF-8)", "bad_topic")
        except Exception:
            # Never let an unexpected error stop paho's loop; the message is acknowledged.
            log.exception("mqtt: unexpected error decoding a message")
            topic, readings = "", []
            self._bad.unrouted("(unknown)", "error")
        queue = self._queue
        if qos == 0 and len(queue) >= _MAX_QUEUED_QOS0:
            # QoS 0 has no flow control: while the store fails, bound the memory it takes.
            self.stats.dropped_qos0 += 1
            return
        content = digest(topic, payload) if qos else b""
        item = Inbound(msg.mid, qos, msg.dup, self._conn, self._session, content, readings, raw)
        with self._cond:
            if raw is not None:
                self._raw_bytes += len(payload)
            queue.append(item)
            n = len(queue)
            # Wake the worker when a batch can start or is full, not on every message.
            if n == 1 or n >= self._batch_max:
                self._cond.notify()
        self.stats.received += 1

    # -- commit worker -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            readings = self._readings_of(batch)
            if readings and not self._commit(readings):
                return  # stopping while the store fails: unacked, redelivered next time
            self._ack(batch)

    def _take(self) -> list[Inbound] | None:
        with self._cond:
            while not self._queue:
                if self._stopping.is_set():
                    return None
                self._cond.wait(0.5)
                if self._client is not None and self._connected.is_set():
                    self._window.idle(self._client, self._last_rx)
            deadline = time.monotonic() + self._batch_wait
            while len(self._queue) < self._batch_max and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(len(self._queue), self._batch_max)
            return [self._queue.popleft() for _ in range(n)]

    def _readings_of(self, batch: list[Inbound]) -> list[Reading]:
        readings: list[Reading] = []
        freed = sum(item.decode(self._router, self._bad) for item in batch)
        with self._cond:
            self._raw_bytes -= freed
        with self._ack_lock:
            for item in batch:
                if item.dup and self._committed.has(item.mid, item.session, item.digest):
                    item.skip = True
                    self.stats.duplicates_skipped += 1
                    continue
                readings.extend(item.readings)
        return readings

    def _commit(self, readings: list[Reading]) -> bool:
        delay = 0.5
        failure: RetryableError | None = None
        while True:
            try:
                self._sink(readings)
            except Exception as exc:
                self.stats.commit_failures += 1
                failure = RetryableError(f"mqtt: storing {len(readings)} readings: {exc}")
                self.last_error = failure
                log.warning("%s; retrying in %.1f s", failure, delay)
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, _MAX_COMMIT_BACKOFF_S)
                continue
            if failure is not None and self.last_error is failure:
                self.last_error = None
            self.stats.commits += 1
            self.stats.committed_readings += len(readings)
            return True

    def _ack(self, batch: list[Inbound]) -> None:
        client = self._client
        assert client is not None
        with self._ack_lock:
            for item in batch:
                if item.qos == 0:
                    continue
                if item.session == self._session:
                    self._committed.add(item.mid, item.session, item.digest)
                # A PUBACK is only valid on the connection the message came on; after a
                # reconnection the broker redelivers the message and it is acked then.
                if item.conn == self._conn:
                    client.ack(item.mid, item.qos)
                    self.stats.acked += 1
