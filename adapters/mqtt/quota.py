"""Keeping the broker's delivery window open when it discards messages too large for us.

Mosquitto (2.0.11 as in Debian 12, and its code up to 2.0.22 and 2.1) discards a message
larger than the client's Maximum Packet Size instead of sending it, but does not give
its place in the client's Receive Maximum back: once enough of them were discarded on
one connection (a run of Receive Maximum, 2,000 for heliod, always is; spread-out ones
add up too) it sends the client nothing more until the client reconnects (reproduced in
tests/adapters/mqtt/test_oversized.py). Nothing arrives then, so a connection quiet for
a while is renewed.

It numbers the QoS 1 and 2 messages it sends in turn, one packet id each, so the ids it
skipped tell how many it discarded: counted, and logged, since heliod sees nothing else
of them.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time

import paho.mqtt.client as mqtt

log = logging.getLogger("heliod.adapters.mqtt")

MAX_PACKET_ID = 65535  # packet ids run 1..65535, then 1 again
LOG_INTERVAL_S = 600.0  # discarded messages are logged at most this often


class SkippedIds:
    """Counts the packet ids a broker skipped."""

    def __init__(self, receive_max: int) -> None:
        self._receive_max = receive_max
        self._last: int | None = None
        self.on_connection = 0  # skipped since the connection started
        self.total = 0  # skipped since start

    def connected(self) -> None:
        """A new connection: ids are counted from its first message."""
        self._last = None
        self.on_connection = 0

    def seen(self, mid: int, dup: bool) -> int:
        """Note a QoS 1 packet id; how many ids were skipped just before it."""
        last, self._last = self._last, mid
        # A redelivered message (DUP) keeps its first id: the ids skipped before it were
        # counted on the connection that first sent it.
        if last is None or dup:
            return 0
        gap = (mid - last - 1) % MAX_PACKET_ID
        # A larger jump cannot be discarded messages (the broker would have stalled
        # first): a broker that numbers otherwise.
        if not 0 < gap < self._receive_max:
            return 0
        self.on_connection += gap
        self.total += gap
        return gap


class DeliveryWindow:
    """Decides when the subscriber's connection is renewed, and cuts it."""

    def __init__(self, receive_max: int, max_packet_size: int, idle_s: float) -> None:
        self.skipped = SkippedIds(receive_max)
        self._max_packet_size = max_packet_size
        self._idle_s = idle_s
        self._since = 0.0  # monotonic time of the last CONNACK or renewal
        self._cut = False  # the connection is being cut on purpose: not an error
        self._logged_at = -LOG_INTERVAL_S

    def connected(self) -> None:
        """A CONNACK (paho's thread)."""
        self.skipped.connected()
        self._since = time.monotonic()
        self._cut = False

    def message(self, mid: int, dup: bool) -> None:
        """A QoS 1 message (paho's thread): count the ids skipped before it."""
        now = time.monotonic()
        if self.skipped.seen(mid, dup) and now - self._logged_at >= LOG_INTERVAL_S:
            self._logged_at = now
            log.warning(
                "mqtt: the broker discarded messages larger than %d bytes instead of sending "
                "them: %d since start (from the packet ids it skipped)",
                self._max_packet_size,
                self.skipped.total,
            )

    def idle(self, client: mqtt.Client, last_rx: float) -> None:
        """While connected (another thread): renew a connection quiet for too long.

        `last_rx`: monotonic time of the last message received.
        """
        now = time.monotonic()
        if now - max(last_rx, self._since) > self._idle_s:
            self._since = now  # at most once per interval
            self._reconnect(client)

    def cut_on_purpose(self) -> bool:
        """True once after a connection loss that we caused."""
        cut, self._cut = self._cut, False
        return cut

    def _reconnect(self, client: mqtt.Client) -> None:
        # Cut the connection; paho reconnects with backoff, as for a lost one. The session
        # is resumed and what was not acknowledged comes again (and a copy already stored
        # is recognised, adapters/mqtt/redelivery.py).
        self._cut = True
        sock = client.socket()
        if isinstance(sock, socket.socket):  # TLS sockets too (ssl.SSLSocket)
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)
