"""MQTT wiring: config → the adapter's settings, and the plant state published on MQTT (§7).

Imported only when `[mqtt]` is configured (paho stays out of a gateway that has no broker).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from heliod.adapters.mqtt import DeviceSettings, FieldSpec, MqttPublisher, MqttSettings, PlantInfo
from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.daemon.config import Config, MqttDevice
from heliod.rewards.times import rfc3339
from heliod.rewards.units import mwh_to_wh

log = logging.getLogger("heliod.mqtt_wiring")

MWH_IN_MWH_UNITS = 10**9  # one MWh in the store's mWh
# A device's power counts in the plant's power until it is this many intervals old: the
# same window after which /healthz calls the device stale (a night without messages must
# not keep the afternoon's power on display).
POWER_FRESH_INTERVALS = 3


def mqtt_settings(config: Config) -> MqttSettings | None:
    """Broker settings with every MQTT device; None without an [mqtt] table."""
    section = config.mqtt
    if section is None:
        return None
    devices = tuple(
        DeviceSettings(
            id=device.id,
            topic=device.topic,
            fields={k: FieldSpec(v.path, v.unit) for k, v in device.fields.items()},
            qos=device.qos,
            timestamp_path=device.timestamp.path if device.timestamp is not None else None,
            timezone=plant.timezone,
        )
        for plant, device in config.devices()
        if isinstance(device, MqttDevice)
    )
    return MqttSettings(
        url=section.url,
        client_id=section.client_id,
        username=section.username,
        password=config.secret("mqtt.password") or "",
        ca_file=str(section.ca_file or ""),
        cert_file=str(section.cert_file or ""),
        key_file=str(section.key_file or ""),
        keepalive=int(section.keepalive.total_seconds()),
        devices=devices,
    )


def mqtt_publisher(config: Config, settings: MqttSettings) -> MqttPublisher | None:
    """The state/mint/availability publisher; None when publish_prefix is ""."""
    section = config.mqtt
    if section is None or not section.publish_prefix:
        return None
    plants = [
        PlantInfo(p.id, p.name, p.reward.symbol, p.reward.tokens_per_mwh) for p in config.plants
    ]
    # The publisher's connections carry no subscriptions: a client id of their own each.
    return MqttPublisher(
        settings, section.publish_prefix, plants, ha_discovery=section.ha_discovery
    )


class StatePublisher:
    """Publishes each plant's retained `state` when E moves (or every `every_s`) and mints."""

    def __init__(
        self,
        publisher: MqttPublisher,
        store: Store,
        config: Config,
        clock_us: Callable[[], int],
        *,
        every_s: float = 60.0,
        rate: float = 1.0,
    ) -> None:
        self._publisher = publisher
        self._store = store
        # plant -> {device: expected interval in clock µs}; `rate` is the demo's clock speed.
        self._plants = {
            p.id: {
                d.id: int(d.expected_interval / timedelta(microseconds=1) * rate) for d in p.devices
            }
            for p in config.plants
        }
        self._clock_us = clock_us
        self._every_us = int(every_s * 1_000_000)
        self._last: dict[str, tuple[int, int]] = {}  # plant -> (e_mwh, published at µs)

    def publish(self, mints: Iterable[tuple[str, int]] = ()) -> None:
        """Mint events first (in order), then the states that changed or are due."""
        now = self._clock_us()
        m = t.mints.c
        with self._store.read() as conn:
            for plant, k in mints:
                event = conn.execute(
                    select(m.event).where(m.plant == plant, m.mwh_index == k)
                ).scalar()
                if event is not None:
                    body = json.loads(event, parse_float=Decimal)
                    self._publisher.publish_mint(plant, body)
            state = repo.load_state(conn)
            for plant, devices in self._plants.items():
                energy = state.plants.get(plant)
                e_mwh = energy.e_mwh if energy else 0
                done = energy.mwh_completed if energy else 0
                last = self._last.get(plant)
                if last is not None and last[0] == e_mwh and now - last[1] < self._every_us:
                    continue
                self._publisher.publish_state(plant, self._state(conn, devices, e_mwh, done, now))
                self._last[plant] = (e_mwh, now)

    @staticmethod
    def _state(
        conn: Any, devices: Mapping[str, int], e_mwh: int, done: int, now: int
    ) -> dict[str, Any]:
        return {
            "power_w": mwh_to_wh(plant_power_mw(conn, devices, now)),  # mW → W, exact
            "energy_wh": mwh_to_wh(e_mwh),
            "mwh_completed": done,
            # (E − 10^6 × mwh_completed) / 10^6 with E in Wh: exact decimal (§7)
            "next_mwh_progress": Decimal(e_mwh - done * MWH_IN_MWH_UNITS).scaleb(-9),
            "updated_at": rfc3339(now),
        }


def plant_power_mw(conn: Any, devices: Mapping[str, int], now_us: int) -> int:
    """A plant's current power (mW): Σ of each device's latest `power_w`, if still fresh.

    Every device of the plant counts, not only its energy devices: OpenDTU and Shelly
    publish power on a topic (so a device) of its own. A device's latest power is left out
    once its reading is older than POWER_FRESH_INTERVALS of the device's interval (µs).
    """
    r = t.readings.c
    total = 0
    for device, interval_us in devices.items():
        row = conn.execute(
            select(r.power_mw, r.ts_us)
            .where(r.device == device, r.power_mw.is_not(None))
            .order_by(r.id.desc())
            .limit(1)
        ).first()
        if row is not None and now_us - row.ts_us <= POWER_FRESH_INTERVALS * interval_us:
            total += int(row.power_mw)
    return total
