"""Adapter settings from a configured device: the daemon's model or a plain mapping."""

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

__all__ = ["settings_from_config"]


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _seconds(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        return parse_duration_s(value)
    return float(value)


def settings_from_config(device: Any) -> ModbusDeviceSettings:
    """Adapter settings from a configured Modbus device (contract §2 key names).

    Reads attributes (or mapping keys) by name, so it takes the daemon's validated
    `ModbusDevice` model as well as a plain dict: durations may be timedelta, seconds
    or duration strings; register scales Decimal, int or decimal strings.
    """
    registers = tuple(
        register_from_mapping(
            {k: v for k in REGISTER_KEYS if (v := _get(r, k)) is not None},
            f"{_get(device, 'id')}.registers[{i}]",
        )
        for i, r in enumerate(_get(device, "registers") or ())
    )
    defaults = ModbusDeviceSettings(id="")
    profile = _get(device, "profile", defaults.profile)
    profile_unit = _profile_unit_id(profile)
    if callable(unit_id_or := getattr(device, "unit_id_or", None)):
        unit_id = int(unit_id_or(profile_unit))  # the daemon's model knows what was written
    else:
        unit_id = int(_get(device, "unit_id", profile_unit or defaults.unit_id))
    settings = ModbusDeviceSettings(
        id=str(_get(device, "id")),
        transport=_get(device, "transport", defaults.transport),
        host=_get(device, "host", defaults.host) or "",
        port=int(_get(device, "port", defaults.port)),
        serial_port=_get(device, "serial_port", defaults.serial_port) or "",
        baudrate=int(_get(device, "baudrate", defaults.baudrate)),
        parity=_get(device, "parity", defaults.parity),
        stopbits=int(_get(device, "stopbits", defaults.stopbits)),
        bytesize=int(_get(device, "bytesize", defaults.bytesize)),
        unit_id=unit_id,
        profile=profile,
        timeout_s=_seconds(_get(device, "timeout"), defaults.timeout_s),
        retries=int(_get(device, "retries", defaults.retries)),
        poll_interval_s=_seconds(_get(device, "poll_interval"), defaults.poll_interval_s),
        registers=registers,
    )
    settings.validate()
    return settings


def _profile_unit_id(profile: str) -> int | None:
    """The profile's default unit id (e.g. SMA's 3); None for sunspec, custom or a bad profile."""
    if profile in (SUNSPEC_PROFILE, CUSTOM_PROFILE):
        return None
    try:
        return load_profile(profile).default_unit_id
    except PermanentError:
        return None  # reported, with its reason, when the device is built
