"""The plant state published on MQTT (docs/mqtt.md, "Published topics"): `state`, `mint`
and `event` (milestones and challenges, each after the mint that caused it).

Built only when `[mqtt]` has a publish prefix; paho stays out of a gateway with no broker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from heliod.adapters.mqtt import MqttPublisher
from heliod.adapters.store import Connection, Store, goals_repo
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store.rollups import latest_power
from heliod.daemon.jobs.accountant import Sent
from heliod.rewards.freshness import is_stale
from heliod.rewards.impact import ImpactRules, plant_impact
from heliod.rewards.times import rfc3339
from heliod.rewards.units import mwh_to_wh

log = logging.getLogger("heliod.mqtt_state")

MWH_IN_MWH_UNITS = 10**9  # one MWh in the store's mWh


class StatePublisher:
    """Publishes each plant's retained `state` when E moves (or every `every_s`) and mints."""

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

    def publish(self, outbox: Iterable[Sent] = ()) -> None:
        """Mint and goal events first (in the order they were committed), then the states
        that changed or are due."""
        now = self._clock_us()
        with self._store.read() as conn:
            for item in outbox:
                if item.event_row is not None:
                    text = goals_repo.event_body(conn, item.event_row)
                    if text is not None:
                        self._publisher.publish_event(item.plant, json.loads(text))
                    continue
                event = repo.mint_event(conn, item.plant, item.mwh_index)
                if event is not None:
                    body = json.loads(event, parse_float=Decimal)
                    self._publisher.publish_mint(item.plant, body)
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
