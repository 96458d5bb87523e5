"""A TCP relay in front of the real Mosquitto that edits what the broker tells heliod.

Mosquitto 2 always supports Subscription Identifiers and cannot be configured otherwise;
brokers such as AWS IoT Core announce `Subscription Identifier Available = 0` in their
CONNACK, and some bridges and proxies forward messages without the identifiers. The relay
reproduces those two behaviours on the packets Mosquitto sends (everything else passes
unchanged), and counts the SUBSCRIBE packets heliod sends, with and without identifiers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

from tests.support import free_port

CONNACK, PUBLISH, SUBSCRIBE = 2, 3, 8


@dataclass
class Seen:
    """What passed through the relay."""

    subscribes: int = 0  # SUBSCRIBE packets from the client
    subscribes_with_ids: int = 0
    publishes_to_client: int = 0
    ids_stripped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """(first byte, body) of one MQTT packet."""
    first = _read_exact(sock, 1)[0]
    length, shift = 0, 0
    while True:
        byte = _read_exact(sock, 1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, _read_exact(sock, length)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + VariableByteIntegers.encode(len(body)) + body


def _props(packet_type: int, body: bytes, at: int) -> tuple[Properties, int]:
    props = Properties(packet_type)  # type: ignore[no-untyped-call]
    _, used = props.unpack(body[at:])  # type: ignore[no-untyped-call]
    return props, at + used


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Relay:
    """Listens on a free loopback port and relays each connection to the broker's port."""

    def __init__(
        self, broker_port: int, *, announce_no_ids: bool = False, strip_ids: bool = False
    ) -> None:
        self.broker_port = broker_port
        self.announce_no_ids = announce_no_ids
        self.strip_ids = strip_ids
        self.seen = Seen()
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """mqtt:// url of the relay."""
        return f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        self._server.close()
        for s in self._sockets:
            _cut(s)
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.broker_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while True:
                first, body = _read_packet(src)
                kind = first >> 4
                if from_client and kind == SUBSCRIBE:
                    props, _ = _props(PacketTypes.SUBSCRIBE, body, 2)
                    with self.seen.lock:
                        self.seen.subscribes += 1
                        self.seen.subscribes_with_ids += hasattr(props, "SubscriptionIdentifier")
                elif not from_client and kind == CONNACK and self.announce_no_ids:
                    props, end = _props(PacketTypes.CONNACK, body, 2)
                    props.SubscriptionIdentifierAvailable = 0
                    body = body[:2] + props.pack() + body[end:]  # type: ignore[no-untyped-call]
                elif not from_client and kind == PUBLISH:
                    body = self._publish(first, body)
                dst.sendall(_packet(first, body))
        except (ConnectionError, OSError):
            _cut(src)
            _cut(dst)

    def _publish(self, first: int, body: bytes) -> bytes:
        with self.seen.lock:
            self.seen.publishes_to_client += 1
        if not self.strip_ids:
            return body
        at = 2 + int.from_bytes(body[:2], "big")  # topic
        if (first >> 1) & 3:
            at += 2  # packet id
        props, end = _props(PacketTypes.PUBLISH, body, at)
        if not hasattr(props, "SubscriptionIdentifier"):
            return body
        del props.SubscriptionIdentifier
        with self.seen.lock:
            self.seen.ids_stripped += 1
        return body[:at] + props.pack() + body[end:]  # type: ignore[no-untyped-call]
