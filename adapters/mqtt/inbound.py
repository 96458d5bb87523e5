"""A received message on its way to the store, and the subscriber's counters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from heliod.adapters.mqtt.badpayloads import BadPayloads
from heliod.adapters.mqtt.routing import Router
from heliod.rewards.readings import Reading

log = logging.getLogger("heliod.adapters.mqtt")


@dataclass(slots=True)
class Inbound:
    """One message between paho's thread and the commit worker."""

    mid: int
    qos: int
    dup: bool
    conn: int  # connection it arrived on: a PUBACK is only valid on that same connection
    session: int  # broker session it belongs to (a clean session forgets unacked messages)
    digest: bytes  # of topic and payload, QoS 1 only: recognises a redelivered copy
    readings: list[Reading]
    # (topic, payload, arrival, subscription ids) still to be decoded by the worker
    raw: tuple[str, bytes | bytearray, datetime, Any] | None = None
    skip: bool = False  # a redelivered copy of a message already committed

    def decode(self, router: Router, bad: BadPayloads) -> int:
        """Turn `raw` into readings (never raises); the payload bytes this frees."""
        if self.raw is None:
            return 0
        topic, payload, arrival, ids = self.raw
        self.raw = None
        try:
            self.readings = router.route(topic, payload, arrival, ids)
        except Exception:
            # Never let an unexpected error stop the worker; the message is acknowledged.
            log.exception("mqtt: unexpected error decoding a message")
            bad.unrouted("(unknown)", "error")
        return len(payload)


@dataclass(slots=True)
class SubscriberStats:
    """Counters since start, for metrics and tests."""

    received: int = 0
    committed_readings: int = 0
    commits: int = 0
    commit_failures: int = 0
    acked: int = 0
    duplicates_skipped: int = 0
    connects: int = 0
    dropped_qos0: int = 0  # QoS 0 messages dropped while the queue was full
    broker_discarded: int = 0  # packet ids the broker skipped: messages too large for us
