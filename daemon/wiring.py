"""Config → adapter settings (Modbus here; MQTT in mqtt_wiring.py), and secrets to redact.

The adapters take plain settings dataclasses and never see the configuration model; this
module is where one becomes the other, so the composition root stays a list of steps.
"""

from __future__ import annotations

import logging

from heliod.adapters.modbus import ModbusDeviceSettings
from heliod.daemon.config import Config, ModbusDevice
from heliod.daemon.polling import settings_from_config

log = logging.getLogger("heliod.wiring")


def modbus_settings(config: Config) -> list[ModbusDeviceSettings]:
    """Settings of every Modbus device of the file."""
    return [settings_from_config(d) for _, d in config.devices() if isinstance(d, ModbusDevice)]


def secrets_of(config: Config) -> list[str]:
    """Every secret value the configuration can reach, for the log filter."""
    found = []
    for name in ("mqtt.password", "influxdb.token", "platform.secret"):
        try:
            value = config.secret(name)
        except Exception:  # an unreadable file is reported where it is used
            value = None
        if value:
            found.append(value)
    return found
