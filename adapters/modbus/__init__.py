"""Modbus acquisition: read-only shared connections, SunSpec, device profiles, custom maps."""

from heliod.adapters.modbus.client import ConnectionPool, Endpoint, UnitReader
from heliod.adapters.modbus.device import ModbusDevice, read_device
from heliod.adapters.modbus.profiles import Profile, list_profiles, load_profile
from heliod.adapters.modbus.scan import ScanModel, ScanPoint, ScanResult, scan
from heliod.adapters.modbus.settings import ModbusDeviceSettings, RegisterSpec

__all__ = [
    "ConnectionPool",
    "Endpoint",
    "ModbusDevice",
    "ModbusDeviceSettings",
    "Profile",
    "RegisterSpec",
    "ScanModel",
    "ScanPoint",
    "ScanResult",
    "UnitReader",
    "list_profiles",
    "load_profile",
    "read_device",
    "scan",
]
