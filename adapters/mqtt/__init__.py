"""MQTT adapter: device telemetry in (manual acknowledgement after commit), plant state out."""

from heliod.adapters.mqtt.badpayloads import BadPayloads
from heliod.adapters.mqtt.discovery import PlantInfo
from heliod.adapters.mqtt.payload import MAX_PAYLOAD_BYTES, PayloadDecoder, PayloadError
from heliod.adapters.mqtt.publisher import MqttPublisher
from heliod.adapters.mqtt.settings import DeviceSettings, FieldSpec, MqttSettings
from heliod.adapters.mqtt.subscriber import MqttSubscriber

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "BadPayloads",
    "DeviceSettings",
    "FieldSpec",
    "MqttPublisher",
    "MqttSettings",
    "MqttSubscriber",
    "PayloadDecoder",
    "PayloadError",
    "PlantInfo",
]
