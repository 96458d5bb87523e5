"""Building paho clients: MQTT 5, TLS, credentials, backoff and last will, shared by both sides."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from heliod.adapters.errors import AdapterError, PermanentError, RetryableError
from heliod.adapters.mqtt.settings import MqttSettings

# CONNACK reason codes (MQTT 5 §3.2.2.2) that no retry can fix: a person must change the
# credentials, the client id or the broker's ACL.
_PERMANENT_CONNACK = {
    0x85,  # client identifier not valid
    0x86,  # bad user name or password
    0x87,  # not authorized
    0x8A,  # banned
    0x8C,  # bad authentication method
}


@dataclass(frozen=True, slots=True)
class Will:
    """A last will: published by the broker when our connection dies without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """A client TLS context: the CA (or the system store), an optional client certificate."""
    try:
        context = ssl.create_default_context(cafile=settings.ca_file or None)
        if settings.cert_file:
            context.load_cert_chain(settings.cert_file, settings.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        # A missing or unreadable CA/cert/key is a configuration problem, not a network one.
        raise PermanentError(f"mqtt TLS files: {exc}") from exc
    return context


def new_client(
    settings: MqttSettings,
    client_id: str,
    *,
    manual_ack: bool = False,
    will: Will | None = None,
) -> mqtt.Client:
    """A configured MQTT 5 client that is not connected yet."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    # An outage can last hours: paho keeps outgoing QoS 1 messages in memory meanwhile.
    client.max_queued_messages_set(10_000)
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls:
        client.tls_set_context(tls_context(settings))
    client.reconnect_delay_set(settings.reconnect_min_delay, settings.reconnect_max_delay)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    return client


def connect_properties(
    session_expiry_s: int, max_packet_size: int, receive_maximum: int | None = None
) -> Properties:
    """CONNECT properties: session expiry, largest packet we take, how many QoS 1 may be unacked."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    # MQTT 5 §3.1.2.11.4: the broker must not send a larger packet; it discards the
    # message instead (Mosquitto logs "Dropping too large outgoing PUBLISH").
    props.MaximumPacketSize = max_packet_size
    if receive_maximum is not None:
        # MQTT 5 Receive Maximum: the broker may send this many QoS 1 messages before our
        # PUBACKs. Mosquitto honours it instead of its max_inflight_messages (20), which
        # is what lets one batch commit hundreds of messages at once.
        props.ReceiveMaximum = receive_maximum
    return props


def connack_error(reason: ReasonCode) -> AdapterError:
    """Our kind of error for a refused CONNACK."""
    text = f"broker refused the connection: {reason}"
    if reason.value in _PERMANENT_CONNACK:
        return PermanentError(text)
    return RetryableError(text)
