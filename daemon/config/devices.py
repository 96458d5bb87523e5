"""Device tables of a plant: Modbus (SunSpec, shipped or custom register maps) and MQTT."""

from __future__ import annotations

import importlib.resources
from datetime import timedelta
from decimal import Context, Decimal
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from heliod.daemon.config.errors import fail, show
from heliod.daemon.config.types import (
    Dec,
    PositiveDuration,
    Section,
    base_dir,
    between,
    decimal_in,
    matches,
    one_of,
)
from heliod.rewards.units import (
    ENERGY_UNITS,
    PASSTHROUGH_UNITS,
    POWER_UNITS,
    is_known_unit,
    unit_factor,
)

DEVICE_ID = r"[A-Za-z0-9_.-]{1,64}"
FIELD_NAME = r"[a-z][a-z0-9_]*"
PROFILES_PACKAGE = "heliod.profiles"
BUILTIN_PROFILES = ("sunspec", "custom")

Transport = Literal["tcp", "rtu", "rtu-over-tcp"]
Parity = Literal["N", "E", "O"]
StopBits = Literal[1, 2]
ByteSize = Literal[7, 8]
RegisterKind = Literal["input", "holding"]
RegisterType = Literal["u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64"]
WordOrder = Literal["big", "little"]
QoS = Literal[0, 1, 2]


def _unit(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    if not is_known_unit(value):
        known = ", ".join([*ENERGY_UNITS, *POWER_UNITS, *sorted(PASSTHROUGH_UNITS - {""})])
        raise fail(f'unknown unit {show(value)} (known: {known}, or "" for as-is)')
    return value


Unit = Annotated[str, BeforeValidator(_unit)]


def _nonzero(value: Decimal) -> Decimal:
    if value == 0:
        raise fail("must not be 0")
    return value


def shipped_profiles() -> list[str]:
    """Names (file stems) of the device profiles shipped in config/profiles/."""
    folder = importlib.resources.files(PROFILES_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


class Register(Section):
    """One value of a custom register map (`profile = "custom"`)."""

    field: Annotated[str, matches(FIELD_NAME)]
    address: Annotated[int, between(0, 65535)]  # 0-based, as on the wire
    kind: Annotated[RegisterKind, one_of(RegisterKind)] = "holding"
    type: Annotated[RegisterType, one_of(RegisterType)]
    word_order: Annotated[WordOrder, one_of(WordOrder)] = "big"
    # ±10^9 with 9 places: 2^64 × scale × unit factor stays exact in counter_range_wh.
    scale: Annotated[Dec, decimal_in(-(10**9), 10**9, 9), AfterValidator(_nonzero)] = Decimal(1)
    unit: Unit = ""

    @property
    def bits(self) -> int:
        """Width of the value in bits (16, 32 or 64)."""
        return int(self.type[1:])

    @property
    def words(self) -> int:
        """Number of 16-bit Modbus registers the value spans."""
        return self.bits // 16

    @property
    def is_float(self) -> bool:
        """True for IEEE 754 types (f32, f64)."""
        return self.type.startswith("f")

    @property
    def counter_range_wh(self) -> Decimal | None:
        """Wrap-around range in Wh, 2^bits × scale × unit factor; None for floats."""
        if self.is_float:
            return None
        exact = Context(prec=100)  # 2^64 has 20 digits: never round here
        return exact.multiply(
            exact.multiply(Decimal(2**self.bits), self.scale), unit_factor(self.unit)
        )


class _Device(Section):
    # Each kind defines `expected_interval`: the time between two readings when all is
    # well (health: stale after 3 of them).
    id: Annotated[str, matches(DEVICE_ID)]


class ModbusDevice(_Device):
    """A device polled over Modbus TCP, RTU (serial) or RTU framing over TCP."""

    protocol: Literal["modbus"]
    transport: Annotated[Transport, one_of(Transport)] = "tcp"
    host: str = Field(default="", validate_default=True)
    port: Annotated[int, between(1, 65535)] = 502
    serial_port: str = Field(default="", validate_default=True)
    baudrate: Annotated[int, between(50, 4_000_000)] = 9600
    parity: Annotated[Parity, one_of(Parity)] = "N"
    stopbits: Annotated[StopBits, one_of(StopBits)] = 1
    bytesize: Annotated[ByteSize, one_of(ByteSize)] = 8
    unit_id: Annotated[int, between(0, 247)] = 1
    profile: str = "sunspec"
    poll_interval: PositiveDuration = timedelta(seconds=10)
    timeout: PositiveDuration = timedelta(seconds=2)
    retries: Annotated[int, between(0, 10)] = 2
    registers: list[Register] = Field(default_factory=list, validate_default=True)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str, info: ValidationInfo) -> str:
        transport = info.data.get("transport")
        if transport in {"tcp", "rtu-over-tcp"} and not value:
            raise fail(f"required with transport = {show(transport)}")
        if transport == "rtu" and value:
            raise fail('not used with transport = "rtu" (set serial_port)')
        return value

    @field_validator("serial_port")
    @classmethod
    def _serial_port(cls, value: str, info: ValidationInfo) -> str:
        transport = info.data.get("transport")
        if transport == "rtu" and not value:
            raise fail('required with transport = "rtu"')
        if transport in {"tcp", "rtu-over-tcp"} and value:
            raise fail(f"not used with transport = {show(transport)} (set host)")
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str, info: ValidationInfo) -> str:
        if value in BUILTIN_PROFILES:
            return value
        if value.endswith(".toml") or "/" in value:
            path = base_dir(info) / value
            if not path.is_file():
                raise fail(f"no profile file {path}")
            return str(path)
        shipped = shipped_profiles()
        if value not in shipped:
            names = ", ".join([*BUILTIN_PROFILES, *shipped])
            raise fail(f"unknown profile {show(value)} (one of {names}, or a path to a .toml file)")
        return value

    @field_validator("registers")
    @classmethod
    def _registers(cls, value: list[Register], info: ValidationInfo) -> list[Register]:
        profile = info.data.get("profile")
        if profile == "custom" and not value:
            raise fail('required with profile = "custom"')
        if profile is not None and profile != "custom" and value:
            raise fail('only allowed with profile = "custom"')
        return value

    @property
    def expected_interval(self) -> timedelta:
        """The poll interval."""
        return self.poll_interval

    @property
    def profile_file(self) -> Traversable | None:
        """The register-map file of a shipped or local profile; None for sunspec/custom."""
        if self.profile in BUILTIN_PROFILES:
            return None
        if "/" in self.profile:  # resolved to an absolute path at validation
            return Path(self.profile)
        return importlib.resources.files(PROFILES_PACKAGE) / f"{self.profile}.toml"

    def unit_id_or(self, profile_default: int | None) -> int:
        """unit_id when written in the file, else the profile's default unit id, else 1."""
        if "unit_id" in self.model_fields_set or profile_default is None:
            return self.unit_id
        return profile_default

    def register(self, field: str) -> Register | None:
        """The custom register that yields `field`, if any."""
        return next((r for r in self.registers if r.field == field), None)


def _json_path(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    if value and "" in value.split("."):
        raise fail(f'must be keys joined by dots, or "" for the whole payload, got {show(value)}')
    return value


JsonPath = Annotated[str, BeforeValidator(_json_path)]


def _topic_filter(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    if not value:
        raise fail("must not be empty")
    levels = value.split("/")
    for i, level in enumerate(levels):
        # MQTT 3.1.1 §4.7.1: '#' is a whole last level, '+' a whole level.
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise fail(f"'#' must be the whole last level, got {show(value)}")
        if "+" in level and level != "+":
            raise fail(f"'+' must be a whole level, got {show(value)}")
    if "\0" in value or len(value.encode()) > 65535:
        raise fail("is not a valid MQTT topic filter")
    return value


class MqttField(Section):
    """Where a reading field sits in the JSON payload, and its unit."""

    path: JsonPath = ""  # dotted keys; a numeric key indexes an array; "" = whole payload
    unit: Unit = ""  # "" = the value is already in Wh / W / as-is


class MqttTimestamp(Section):
    """Where the reading's time sits in the payload (ISO 8601 or Unix seconds)."""

    path: JsonPath


class MqttDevice(_Device):
    """A device whose readings arrive as MQTT messages (e.g. Tasmota's tele/…/SENSOR)."""

    protocol: Literal["mqtt"]
    topic: Annotated[str, BeforeValidator(_topic_filter)]
    qos: Annotated[QoS, one_of(QoS)] = 1
    fields: dict[Annotated[str, matches(FIELD_NAME)], MqttField] = Field(min_length=1)
    timestamp: MqttTimestamp | None = None
    # Not in the contract: how often messages are expected (Tasmota's TelePeriod is 300 s).
    interval: PositiveDuration = timedelta(minutes=5)

    @property
    def expected_interval(self) -> timedelta:
        """The configured message interval."""
        return self.interval


Device = Annotated[ModbusDevice | MqttDevice, Field(discriminator="protocol")]
