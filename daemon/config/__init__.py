"""heliod's configuration model (docs/configuration.md): `load_config()` returns a Config."""

from heliod.daemon.config.devices import (
    Device,
    ModbusDevice,
    MqttDevice,
    MqttField,
    MqttTimestamp,
    Register,
    shipped_profiles,
)
from heliod.daemon.config.errors import ConfigError
from heliod.daemon.config.loader import DEFAULT_PATH, config_path, load_config, validate_config
from heliod.daemon.config.model import Config
from heliod.daemon.config.plants import Plant, Reward
from heliod.daemon.config.sections import (
    ApiSection,
    ApiToken,
    DaemonSection,
    InfluxSection,
    LogSection,
    MqttSection,
    PlatformSection,
    StorageSection,
)
from heliod.daemon.config.types import parse_duration

__all__ = [
    "DEFAULT_PATH",
    "ApiSection",
    "ApiToken",
    "Config",
    "ConfigError",
    "DaemonSection",
    "Device",
    "InfluxSection",
    "LogSection",
    "ModbusDevice",
    "MqttDevice",
    "MqttField",
    "MqttSection",
    "MqttTimestamp",
    "Plant",
    "PlatformSection",
    "Register",
    "Reward",
    "StorageSection",
    "config_path",
    "load_config",
    "parse_duration",
    "shipped_profiles",
    "validate_config",
]
