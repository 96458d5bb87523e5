"""Plain settings of one Modbus device and its registers, free of the daemon's config model."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from heliod.adapters.errors import PermanentError
from heliod.rewards.units import is_known_unit

Transport = Literal["tcp", "rtu", "rtu-over-tcp"]
RegisterKind = Literal["holding", "input"]
WordOrder = Literal["big", "little"]

TRANSPORTS: frozenset[str] = frozenset({"tcp", "rtu", "rtu-over-tcp"})
REGISTER_KINDS: frozenset[str] = frozenset({"holding", "input"})
WORD_ORDERS: frozenset[str] = frozenset({"big", "little"})
# Register types and their width in 16-bit registers.
TYPE_WIDTHS: dict[str, int] = {
    "u16": 1,
    "i16": 1,
    "u32": 2,
    "i32": 2,
    "u64": 4,
    "i64": 4,
    "f32": 2,
    "f64": 4,
}
SUNSPEC_PROFILE = "sunspec"
CUSTOM_PROFILE = "custom"
MAX_REGISTERS_PER_READ = 125  # Modbus application protocol v1.1b3, §6.3: FC3/FC4 quantity ≤ 125


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One value read from the device: where it lives, how it is encoded, which field it feeds."""

    field: str
    address: int  # 0-based, as on the wire
    kind: RegisterKind = "holding"
    type: str = "u16"
    word_order: WordOrder = "big"
    scale: Decimal = Decimal(1)
    unit: str = ""
    # Address (same kind) of an int16 power-of-ten exponent applied on top of `scale`,
    # as SunSpec's *_SF registers; 0x8000 there means the value is absent.
    scale_register: int | None = None
    # Raw values (unsigned, whole register width) that mean "not implemented" → absent.
    not_implemented: tuple[int, ...] = ()

    @property
    def width(self) -> int:
        """Number of 16-bit registers the value spans."""
        return TYPE_WIDTHS[self.type]

    def validate(self, where: str) -> None:
        """Raise PermanentError naming `where` when a key is out of range."""
        problems: list[str] = []
        if not self.field:
            problems.append("field: must not be empty")
        if self.type not in TYPE_WIDTHS:
            problems.append(f"type: must be one of {'|'.join(TYPE_WIDTHS)}, got {self.type!r}")
        elif not 0 <= self.address <= 0x10000 - self.width:
            problems.append(f"address: must be 0..{0x10000 - self.width}, got {self.address}")
        if self.kind not in REGISTER_KINDS:
            problems.append(f"kind: must be holding|input, got {self.kind!r}")
        if self.word_order not in WORD_ORDERS:
            problems.append(f"word_order: must be big|little, got {self.word_order!r}")
        if not isinstance(self.scale, Decimal) or not self.scale.is_finite():
            problems.append(f"scale: must be a finite decimal, got {self.scale!r}")
        if not is_known_unit(self.unit):
            problems.append(f"unit: unknown unit {self.unit!r}")
        if self.scale_register is not None and not 0 <= self.scale_register <= 0xFFFF:
            problems.append(f"scale_register: must be 0..65535, got {self.scale_register}")
        if problems:
            raise PermanentError("; ".join(f"{where}.{p}" for p in problems))


@dataclass(frozen=True, slots=True)
class ModbusDeviceSettings:
    """Everything needed to poll one Modbus device (docs/modbus.md; durations in seconds)."""

    id: str
    transport: Transport = "tcp"
    host: str = ""
    port: int = 502
    serial_port: str = ""
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    unit_id: int = 1
    profile: str = SUNSPEC_PROFILE
    timeout_s: float = 2.0
    retries: int = 1  # extra attempts after a timeout or a dropped connection
    poll_interval_s: float = 10.0
    registers: tuple[RegisterSpec, ...] = field(default_factory=tuple)

    def validate(self) -> None:
        """Raise PermanentError listing every invalid key of this device."""
        problems: list[str] = []
        if self.transport not in TRANSPORTS:
            problems.append(f"transport: must be tcp|rtu|rtu-over-tcp, got {self.transport!r}")
        if self.transport == "rtu":
            if not self.serial_port:
                problems.append("serial_port: required for transport rtu")
            if self.parity not in {"N", "E", "O"}:
                problems.append(f"parity: must be N|E|O, got {self.parity!r}")
            if self.stopbits not in {1, 2}:
                problems.append(f"stopbits: must be 1 or 2, got {self.stopbits}")
            if self.bytesize not in {7, 8}:
                problems.append(f"bytesize: must be 7 or 8, got {self.bytesize}")
        else:
            if not self.host:
                problems.append(f"host: required for transport {self.transport}")
            if not 1 <= self.port <= 65535:
                problems.append(f"port: must be 1..65535, got {self.port}")
        if not 0 <= self.unit_id <= 255:
            problems.append(f"unit_id: must be 0..255, got {self.unit_id}")
        if not self.timeout_s > 0:
            problems.append(f"timeout: must be positive, got {self.timeout_s}")
        if self.retries < 0:
            problems.append(f"retries: must be ≥ 0, got {self.retries}")
        if not self.poll_interval_s > 0:
            problems.append(f"poll_interval: must be positive, got {self.poll_interval_s}")
        if self.profile == CUSTOM_PROFILE and not self.registers:
            problems.append('registers: profile "custom" needs at least one register')
        if problems:
            raise PermanentError("; ".join(f"{self.id}.{p}" for p in problems))
        for i, spec in enumerate(self.registers):
            spec.validate(f"{self.id}.registers[{i}]")
