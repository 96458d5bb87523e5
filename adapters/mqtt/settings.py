"""Plain settings of the MQTT adapter; the daemon maps its validated config onto them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from heliod.adapters.errors import PermanentError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# How long the broker keeps our session (subscriptions and queued QoS 1 messages) while
# heliod is away: a week covers a gateway that is off over a holiday; the broker's own
# limits (max_queued_messages) usually bite first, see docs/mqtt.md.
DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600
# MQTT 5 Maximum Packet Size announced in CONNECT: the broker discards (and counts as
# delivered) any message whose packet is larger, so one never takes heliod's memory.
# Telemetry is a few hundred bytes (a Tasmota SENSOR message with every sensor is under
# 2 KiB); 64 KiB leaves room for any real device.
DEFAULT_MAX_PACKET_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where a field's number is in a payload ("" = the whole payload) and its unit."""

    path: str
    unit: str


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """One device fed by MQTT: a topic filter and how to turn its payload into a reading."""

    id: str
    topic: str  # MQTT filter; + and # wildcards allowed
    fields: Mapping[str, FieldSpec]
    qos: int = 1
    timestamp_path: str | None = None  # None: arrival time (UTC)
    timezone: str = "UTC"  # the plant's IANA zone, for payload times without an offset


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """How to reach the broker, and the devices to subscribe to."""

    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = "heliod-gateway"
    username: str = ""
    password: str = field(default="", repr=False)  # already read from password_file
    ca_file: str = ""  # mqtts: CA bundle; "" = the system's trust store
    cert_file: str = ""  # mqtts: client certificate (PEM), with key_file
    key_file: str = ""
    keepalive: int = 30  # seconds
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S
    reconnect_min_delay: int = 1  # seconds; paho doubles it up to the max
    reconnect_max_delay: int = 60
    max_packet_size: int = DEFAULT_MAX_PACKET_SIZE  # bytes, announced to the broker
    devices: tuple[DeviceSettings, ...] = ()

    @property
    def tls(self) -> bool:
        """True for an mqtts:// url."""
        return _scheme(self.url) == "mqtts"

    @property
    def host(self) -> str:
        """The broker's host name or address."""
        host = urlsplit(self.url).hostname
        if not host:
            raise PermanentError(f"mqtt url has no host: {self.url!r}")
        return host

    @property
    def port(self) -> int:
        """The broker's port, 1883 or 8883 by default."""
        try:
            port = urlsplit(self.url).port
        except ValueError as exc:
            raise PermanentError(f"mqtt url has a bad port: {self.url!r}") from exc
        return port or DEFAULT_PORTS[_scheme(self.url)]


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in DEFAULT_PORTS:
        raise PermanentError(f"mqtt url must start with mqtt:// or mqtts://, got {url!r}")
    return scheme
