"""Which devices a topic belongs to, and the readings one message yields."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from datetime import datetime

from paho.mqtt.client import topic_matches_sub

from heliod.adapters.errors import PermanentError
from heliod.adapters.mqtt.badpayloads import BadPayloads
from heliod.adapters.mqtt.payload import MAX_PAYLOAD_BYTES, PayloadDecoder, PayloadError, parse_json
from heliod.adapters.mqtt.settings import DeviceSettings
from heliod.rewards.readings import Reading

# Distinct topics seen are few (one or two per device); the cap only bounds memory if a
# wildcard filter meets a flood of distinct topic names.
_CACHE_LIMIT = 4096
# Subscription Identifiers heliod gives are drawn from the filter's text, in this range, so
# that a filter keeps its identifier when the configuration changes: messages queued for
# it while heliod restarts then still reach its devices. MQTT 5 allows 1..268,435,455;
# below the range are the identifiers 1, 2, … that heliod gave before (by filter order).
ID_BASE = 1 << 20
ID_MAX = 268_435_455


def subscription_ids(filters: Collection[str]) -> dict[str, int]:
    """A stable identifier for each filter: from its CRC-32, the next free one on a collision."""
    ids: dict[str, int] = {}
    taken: set[int] = set()
    for flt in sorted(filters):
        n = ID_BASE + zlib.crc32(flt.encode()) % (ID_MAX - ID_BASE + 1)
        while n in taken:
            n = ID_BASE if n == ID_MAX else n + 1
        ids[flt] = n
        taken.add(n)
    return ids


def filters_overlap(a: str, b: str) -> bool:
    """True when some topic matches both MQTT filters (+ and # wildcards)."""
    la, lb = a.split("/"), b.split("/")
    for x, y in zip(la, lb, strict=False):
        if x == "#" or y == "#":
            return True
        if x != y and "+" not in (x, y):
            return False
    if len(la) == len(lb):
        return True
    # "a/#" also matches "a" itself: the longer may only go on with a final #.
    longer = la if len(la) > len(lb) else lb
    return len(longer) == min(len(la), len(lb)) + 1 and longer[-1] == "#"


class Router:
    """Maps a message to the readings of every device whose filter matches its topic."""

    def __init__(
        self,
        devices: Sequence[DeviceSettings],
        bad: BadPayloads,
        max_payload: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        ids = [d.id for d in devices]
        if len(set(ids)) != len(ids):
            raise PermanentError("mqtt devices: ids must be unique")
        for device in devices:
            if device.qos not in (0, 1, 2):
                raise PermanentError(f"device {device.id}: qos must be 0, 1 or 2, got {device.qos}")
        self._devices = tuple(devices)
        self._filters = [(d.topic, PayloadDecoder(d)) for d in devices]
        # One MQTT 5 Subscription Identifier per distinct filter: a broker sends one copy
        # of a message per matching subscription, each with its identifier, so with
        # overlapping filters a copy goes only to the devices of its own filter.
        self._ids = subscription_ids({d.topic for d in devices})
        distinct = sorted(self._ids)
        # Without overlaps every message comes once and its topic names its devices: no
        # identifiers then, which also spares paho decoding a property on every message
        # (7 µs of its CPU per message, docs/performance.md).
        self.overlapping = any(
            filters_overlap(a, b) for k, a in enumerate(distinct) for b in distinct[k + 1 :]
        )
        self._id_of = {d.id: self._ids[d.topic] for d in devices}  # device -> its filter's id
        self._bad = bad
        self._max_payload = max_payload
        self._cache: dict[str, tuple[PayloadDecoder, ...]] = {}

    def subscriptions(self) -> list[tuple[str, int, int | None]]:
        """(filter, qos, subscription id) to subscribe to, each filter once with its highest QoS.

        The id is None when no two filters overlap.

        QoS 2 is subscribed as QoS 1: under QoS 2 a receiver owns the message once it sent
        PUBREC, before our commit, so a crash then would lose it; QoS 1 redelivers it, and
        the store's timestamp rule (docs/accounting.md) absorbs the rare duplicate.
        """
        best: dict[str, int] = {}
        for device in self._devices:
            best[device.topic] = max(best.get(device.topic, 0), min(device.qos, 1))
        return [
            (flt, qos, self._ids[flt] if self.overlapping else None)
            for flt, qos in sorted(best.items())
        ]

    def matching(self, topic: str) -> tuple[PayloadDecoder, ...]:
        """The decoders of the devices whose filter matches `topic`."""
        found = self._cache.get(topic)
        if found is None:
            found = tuple(dec for flt, dec in self._filters if topic_matches_sub(flt, topic))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[topic] = found
        return found

    def route(
        self,
        topic: str,
        payload: bytes | bytearray,
        arrival: datetime,
        sub_ids: Collection[int] = (),
    ) -> list[Reading]:
        """Readings from one message; refused payloads are counted per device, never raised.

        `sub_ids`: the message's Subscription Identifiers. Those heliod gave select the
        devices of their filters (another copy comes for each other matching filter).
        Without any (a subscription made without one, a broker or bridge that sends none),
        or with only identifiers of an older heliod, every matching device gets it. A
        message that reaches no device is counted and its topic logged once.
        """
        decoders = self.matching(topic)
        if not decoders:
            self._bad.unrouted(topic, "no_device")
            return []
        if sub_ids and any(n >= ID_BASE for n in sub_ids):
            # The topic must match too: an identifier could come from a subscription of an
            # earlier configuration still held in the broker's persistent session.
            decoders = tuple(d for d in decoders if self._id_of[d.device_id] in sub_ids)
            if not decoders:
                self._bad.unrouted(topic, "removed_filter")
                return []
        try:
            doc = parse_json(payload, self._max_payload)
        except PayloadError as exc:
            for dec in decoders:
                self._bad.record(dec.device_id, exc.reason, exc.detail, topic)
            return []
        readings = []
        for dec in decoders:
            try:
                readings.append(dec.extract(doc, arrival))
            except PayloadError as exc:
                self._bad.record(dec.device_id, exc.reason, exc.detail, topic)
        return readings
