"""Plant state and events out, under `<publish_prefix>/<plant>/` (docs/mqtt.md).

One connection per plant, because MQTT allows one last will per connection and each
plant's `availability` topic must turn `offline` when heliod dies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import paho.mqtt.client as mqtt

from heliod.adapters.mqtt.connection import Will, connect_properties, new_client
from heliod.adapters.mqtt.discovery import PlantInfo, discovery_messages
from heliod.adapters.mqtt.settings import MqttSettings

log = logging.getLogger("heliod.adapters.mqtt")

ONLINE = b"online"
OFFLINE = b"offline"


def to_json(value: Any) -> str:
    """JSON text with Decimals written from their exact digits (never through a float)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON form")
        return format(value, "f")
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, datetime):
        return json.dumps(rfc3339(value))
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    # Binary floats never carry energy in heliod; refusing them here catches a slip early.
    raise TypeError(f"cannot publish a {type(value).__name__} exactly")


def rfc3339(ts: datetime) -> str:
    """UTC with a Z, as heliod writes every time (docs/accounting.md)."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _PlantLink:
    def __init__(self, settings: MqttSettings, prefix: str, plant: PlantInfo, ha: bool) -> None:
        self.plant = plant
        self.base = f"{prefix}/{plant.id}"
        self.prefix = prefix
        self.ha = ha
        self.connected = threading.Event()
        self.pending: list[mqtt.MQTTMessageInfo] = []
        self.lock = threading.Lock()
        self.client = new_client(
            settings,
            f"{settings.client_id}-pub-{plant.id}",
            will=Will(f"{self.base}/availability", OFFLINE),
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(
            settings.host,
            settings.port,
            keepalive=settings.keepalive,
            clean_start=True,
            # Nothing to keep: this side only publishes.
            properties=connect_properties(0, settings.max_packet_size),
        )

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt publisher for %s: broker refused: %s", self.plant.id, reason)
            return
        self.publish(f"{self.base}/availability", ONLINE, retain=True)
        for topic, config in discovery_messages(self.prefix, self.plant):
            # Turning ha_discovery off removes the entities: an empty retained config.
            payload = to_json(config).encode() if self.ha and config is not None else b""
            self.publish(topic, payload, retain=True)  # tracked, so flush() covers them
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        self.connected.clear()

    def publish(self, topic: str, payload: bytes, retain: bool) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self.lock:
            # Keep only what the broker has not acknowledged yet, for flush().
            self.pending = [i for i in self.pending if not i.is_published() and i.rc == 0]
            self.pending.append(info)
        return info

    def flush(self, deadline: float) -> bool:
        with self.lock:
            pending = list(self.pending)
        for info in pending:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                return False  # not connected: paho keeps it queued for the reconnection
            if not info.is_published():
                return False
        return True


class MqttPublisher:
    """Publishes retained `state`, `mint` and `event` messages and `availability` per plant."""

    def __init__(
        self,
        settings: MqttSettings,
        prefix: str,
        plants: Sequence[PlantInfo | str],
        *,
        ha_discovery: bool = False,
    ) -> None:
        infos = [p if isinstance(p, PlantInfo) else PlantInfo(id=p) for p in plants]
        self._prefix = prefix.rstrip("/")
        # publish_prefix = "" publishes nothing (docs/configuration.md).
        self._links = (
            {p.id: _PlantLink(settings, self._prefix, p, ha_discovery) for p in infos}
            if self._prefix
            else {}
        )

    @property
    def enabled(self) -> bool:
        """False when publish_prefix is empty."""
        return bool(self._links)

    def start(self) -> None:
        """Connect every plant's link in the background; each retries with backoff."""
        for link in self._links.values():
            link.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """True once every plant's link is connected."""
        return all(link.connected.wait(timeout) for link in self._links.values())

    def publish_state(self, plant: str, state: Mapping[str, Any]) -> None:
        """Retained `state`: power_w, energy_wh, mwh_completed, next_mwh_progress, updated_at."""
        link = self._link(plant)
        if link is not None:
            link.publish(f"{link.base}/state", to_json(state).encode(), retain=True)

    def publish_mint(self, plant: str, body: Mapping[str, Any]) -> mqtt.MQTTMessageInfo | None:
        """A `mint` event at QoS 1: the platform push body without `credits`. Returns its
        delivery (None: publishing is off); the client keeps it until the broker
        acknowledges it, across reconnections."""
        link = self._link(plant)
        if link is None:
            return None
        event = {k: v for k, v in body.items() if k != "credits"}
        return link.publish(f"{link.base}/mint", to_json(event).encode(), retain=False)

    def publish_event(self, plant: str, body: Mapping[str, Any]) -> mqtt.MQTTMessageInfo | None:
        """A milestone or challenge `event` at QoS 1, not retained: the push body as is.
        Returns its delivery, like `publish_mint`."""
        link = self._link(plant)
        if link is None:
            return None
        return link.publish(f"{link.base}/event", to_json(body).encode(), retain=False)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the broker acknowledged everything published so far; False on timeout."""
        deadline = time.monotonic() + timeout
        flushed = [link.flush(deadline) for link in self._links.values()]  # every link
        return all(flushed)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish `offline` on every link, wait for all within one deadline, disconnect."""
        sent = [
            (link, link.client.publish(f"{link.base}/availability", OFFLINE, qos=1, retain=True))
            for link in self._links.values()
        ]
        deadline = time.monotonic() + timeout
        for link, info in sent:
            if link.connected.is_set():
                # If the connection drops meanwhile, the last will says offline.
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        for link in self._links.values():
            link.client.disconnect()
            link.client.loop_stop()

    def _link(self, plant: str) -> _PlantLink | None:
        if not self._links:
            return None
        try:
            return self._links[plant]
        except KeyError:
            raise ValueError(f"unknown plant {plant!r}") from None
