"""The plant state published on MQTT (docs/mqtt.md, "Published topics"): `state`, `mint`
and `event` (milestones and challenges, each after the mint that caused it).

Built only when `[mqtt]` has a publish prefix; paho stays out of a gateway with no broker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from heliod.adapters.store import Connection, Store, published
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store.rollups import latest_power
from heliod.rewards.freshness import is_stale
from heliod.rewards.impact import ImpactRules, plant_impact
from heliod.rewards.times import rfc3339
from heliod.rewards.units import mwh_to_wh

if TYPE_CHECKING:  # paho is imported only where a publisher is built (daemon/boot/build.py)
    from heliod.adapters.mqtt import MqttPublisher

log = logging.getLogger("heliod.mqtt_state")

MWH_IN_MWH_UNITS = 10**9  # one MWh in the store's mWh


BATCH = 200  # mints (and events) handed to the broker per publish


class Delivery(Protocol):
    """A QoS 1 message handed to the MQTT client: taken (`rc`), acknowledged yet?"""

    @property
    def rc(self) -> int: ...

    def is_published(self) -> bool: ...


# The client took the message: sent, or queued until it reconnects (paho's return codes).
TAKEN = (0, 4)  # MQTT_ERR_SUCCESS, MQTT_ERR_NO_CONN


def _kind(item: published.Item) -> int:
    return 0 if item.event_row is None else 1


class StatePublisher:
    """Publishes each plant's retained `state` when E moves (or every `every_s`), and every
    committed mint and goal event once, in commit order, from a persisted position."""

    def __init__(
        self,
        publisher: MqttPublisher,
        store: Store,
        intervals_us: Mapping[str, Mapping[str, int]],
        clock_us: Callable[[], int],
        *,
        every_s: float = 60.0,
        impact: Mapping[str, ImpactRules] | None = None,
    ) -> None:
        self._publisher = publisher
        self._impact = dict(impact or {})  # plant -> its [plants.impact]
        self._store = store
        # plant -> {device: expected interval in clock µs}
        self._plants = {plant: dict(devices) for plant, devices in intervals_us.items()}
        self._clock_us = clock_us
        self._every_us = int(every_s * 1_000_000)
        self._last: dict[str, tuple[int, int]] = {}  # plant -> (e_mwh, published at µs)
        # Per kind (0: mints, 1: events): every row up to `_acked` acknowledged by the
        # broker (persisted), every row up to `_handed` handed to the client, and the
        # deliveries of rows handed but not yet counted in `_acked`.
        with store.write() as conn:
            mints, events = published.start(conn, clock_us())
            self._newest = published.newest_mints(conn, mints)
        self._acked = [mints, events]
        self._handed = [mints, events]
        self._out: tuple[dict[int, Delivery | None], ...] = ({}, {})

    def publish(self) -> None:
        """Mints and goal events committed since the last call first (each event after
        its mint), then the states that changed or are due; then records what the broker
        acknowledged."""
        now = self._clock_us()
        with self._store.read() as conn:
            self._send_committed(conn)
            state = repo.load_state(conn)
            for plant, devices in self._plants.items():
                energy = state.plants.get(plant)
                e_mwh = energy.e_mwh if energy else 0
                done = energy.mwh_completed if energy else 0
                last = self._last.get(plant)
                if last is not None and last[0] == e_mwh and now - last[1] < self._every_us:
                    continue
                body = self._state(conn, devices, e_mwh, done, now)
                impact = self._impact.get(plant)
                if impact is not None:  # the figure and, as everywhere, its source
                    body["co2_avoided_kg"] = plant_impact(impact, e_mwh).co2_avoided_kg
                    body["co2_source"] = impact.source
                self._publisher.publish_state(plant, body)
                self._last[plant] = (e_mwh, now)
        self._save()

    def close(self, timeout: float = 2.0) -> None:
        """At shutdown: wait for the broker's acknowledgements (bounded), record them."""
        self._publisher.flush(timeout)
        self._save()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop publishing: record what the broker acknowledged (within half of `timeout`),
        then publish `offline` and disconnect within the rest."""
        deadline = time.monotonic() + timeout
        self.close(timeout / 2)
        self._publisher.stop(max(0.0, deadline - time.monotonic()))

    def _send_committed(self, conn: Connection) -> None:
        fetched = (
            published.mints_after(conn, self._handed[0], BATCH),
            published.events_after(conn, self._handed[1], BATCH),
        )
        for m in fetched[0]:
            self._newest[m.plant] = max(self._newest.get(m.plant, 0), m.mwh_index)
        # An event goes after the mint that caused it: one whose mint is beyond this batch
        # of mints waits, with every later event, for the next call.
        ready: list[published.Item] = []
        for e in fetched[1]:
            if e.mwh_index > self._newest.get(e.plant, 0):
                break
            ready.append(e)
        # Per plant, mint k then the events that follow it; plants are independent.
        items = sorted(
            (i for i in [*fetched[0], *ready] if i.row_id not in self._out[_kind(i)]),
            key=lambda i: (i.plant, i.mwh_index, i.event_row is not None, i.row_id),
        )
        for item in items:
            if item.plant not in self._plants:  # a plant no longer configured: skipped
                self._out[_kind(item)][item.row_id] = None
                continue
            if item.event_row is None:
                body = json.loads(item.body, parse_float=Decimal)
                sent = self._publisher.publish_mint(item.plant, body)
            else:
                sent = self._publisher.publish_event(item.plant, json.loads(item.body))
            if sent is not None and sent.rc not in TAKEN:
                # The client's queue is full (a long broker outage): the rest waits.
                log.warning("MQTT: the client's queue is full; publishing resumes later")
                break
            self._out[_kind(item)][item.row_id] = sent
        for kind, rows in enumerate(fetched):
            for row in rows:  # every row up to here handed: the next call starts after it
                if row.row_id not in self._out[kind]:
                    break
                self._handed[kind] = row.row_id

    def _save(self) -> None:
        """Persist, per kind, the rows up to the first one the broker has not acknowledged."""
        acked = list(self._acked)
        for kind, out in enumerate(self._out):
            for row_id in sorted(out):
                sent = out[row_id]
                if row_id > self._handed[kind] or (sent is not None and not sent.is_published()):
                    break
                del out[row_id]
                acked[kind] = row_id
        if acked != self._acked:
            with self._store.write() as conn:
                published.save(conn, acked[0], acked[1], self._clock_us())
            self._acked = acked

    @staticmethod
    def _state(
        conn: Connection, devices: Mapping[str, int], e_mwh: int, done: int, now: int
    ) -> dict[str, Any]:
        return {
            "power_w": mwh_to_wh(plant_power_mw(conn, devices, now)),  # mW → W, exact
            "energy_wh": mwh_to_wh(e_mwh),
            "mwh_completed": done,
            # (E − 10^6 × mwh_completed) / 10^6 with E in Wh: exact decimal (docs/mqtt.md)
            "next_mwh_progress": Decimal(e_mwh - done * MWH_IN_MWH_UNITS).scaleb(-9),
            "updated_at": rfc3339(now),
        }


def plant_power_mw(conn: Connection, devices: Mapping[str, int], now_us: int) -> int:
    """A plant's current power (mW): Σ of each device's latest `power_w`, while fresh.

    Every device of the plant counts, not only its energy devices: OpenDTU and Shelly
    publish power on a topic (so a device) of its own. A device's latest power is left out
    once it is stale (rewards/freshness.py): a night without messages must not keep the
    afternoon's power on display.
    """
    total = 0
    for device, interval_us in devices.items():
        latest = latest_power(conn, device)
        if latest is not None and not is_stale(latest[1], now_us, interval_us):
            total += latest[0]
    return total
