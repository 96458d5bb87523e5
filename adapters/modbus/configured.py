"""Adapter settings from a plain mapping with the configuration's key names (docs/modbus.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from heliod.adapters.errors import PermanentError
from heliod.adapters.modbus.profiles import (
    REGISTER_KEYS,
    load_profile,
    parse_duration_s,
    register_from_mapping,
)
from heliod.adapters.modbus.settings import CUSTOM_PROFILE, SUNSPEC_PROFILE, ModbusDeviceSettings

__all__ = ["profile_unit_id", "settings_from_mapping"]


def _seconds(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        return parse_duration_s(value)
    return float(value)


def settings_from_mapping(device: Mapping[str, Any]) -> ModbusDeviceSettings:
    """Adapter settings from a Modbus device's keys as written in heliod.toml.

    Durations may be timedelta, seconds or duration strings; register scales Decimal,
    int or decimal strings. Without `unit_id`, the profile's default unit id (else 1).
    """
    registers = tuple(
        register_from_mapping(
            {k: v for k in REGISTER_KEYS if (v := r.get(k)) is not None},
            f"{device.get('id')}.registers[{i}]",
        )
        for i, r in enumerate(device.get("registers") or ())
    )
    defaults = ModbusDeviceSettings(id="")
    profile = device.get("profile", defaults.profile)
    unit_id = device.get("unit_id")
    if unit_id is None:
        unit_id = profile_unit_id(profile) or defaults.unit_id
    settings = ModbusDeviceSettings(
        id=str(device.get("id")),
        transport=device.get("transport", defaults.transport),
        host=device.get("host", defaults.host) or "",
        port=int(device.get("port", defaults.port)),
        serial_port=device.get("serial_port", defaults.serial_port) or "",
        baudrate=int(device.get("baudrate", defaults.baudrate)),
        parity=device.get("parity", defaults.parity),
        stopbits=int(device.get("stopbits", defaults.stopbits)),
        bytesize=int(device.get("bytesize", defaults.bytesize)),
        unit_id=int(unit_id),
        profile=profile,
        timeout_s=_seconds(device.get("timeout"), defaults.timeout_s),
        retries=int(device.get("retries", defaults.retries)),
        poll_interval_s=_seconds(device.get("poll_interval"), defaults.poll_interval_s),
        registers=registers,
    )
    settings.validate()
    return settings


def profile_unit_id(profile: str) -> int | None:
    """The profile's default unit id (e.g. SMA's 3); None for sunspec, custom or a bad profile."""
    if profile in (SUNSPEC_PROFILE, CUSTOM_PROFILE):
        return None
    try:
        return load_profile(profile).default_unit_id
    except PermanentError:
        return None  # reported, with its reason, when the device is built
