"""`heliod scan`: find the SunSpec models of a device and decode their current values."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from heliod.adapters.errors import PermanentError
from heliod.adapters.modbus.client import ConnectionPool
from heliod.adapters.modbus.settings import ModbusDeviceSettings
from heliod.adapters.modbus.sunspec import (
    choose_energy_model,
    discover,
    model_fields,
    point_value,
    read_model,
)
from heliod.adapters.modbus.sunspec_models import MODEL_LAYOUTS, MODEL_NAMES


def _text(value: Decimal | str) -> str:
    """Plain notation for numbers (1234560, not 1.23456E+6)."""
    return f"{value:f}" if isinstance(value, Decimal) else value


@dataclass(frozen=True, slots=True)
class ScanPoint:
    """One decoded point: name, value (Decimal or text), unit."""

    name: str
    value: Decimal | str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class ScanModel:
    """A model in the chain with its decoded points (none for models heliod does not decode)."""

    id: int
    name: str
    address: int
    length: int
    points: tuple[ScanPoint, ...] = ()
    fields: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What `scan` found behind one unit id."""

    endpoint: str
    unit_id: int
    base_address: int
    models: tuple[ScanModel, ...]
    energy_model: int | None  # the model `profile = "sunspec"` would read

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; numbers are decimal strings so no digit is lost."""
        return {
            "endpoint": self.endpoint,
            "unit_id": self.unit_id,
            "base_address": self.base_address,
            "energy_model": self.energy_model,
            "models": [
                {
                    "id": m.id,
                    "name": m.name,
                    "address": m.address,
                    "length": m.length,
                    "fields": {k: str(v) for k, v in m.fields.items()},
                    "points": [
                        {"name": p.name, "value": _text(p.value), "unit": p.unit} for p in m.points
                    ],
                }
                for m in self.models
            ],
        }

    def to_text(self) -> str:
        """Plain-text rendering for the terminal."""
        lines = [
            f"SunSpec device at {self.endpoint} unit {self.unit_id}, "
            f"base address {self.base_address}"
        ]
        for m in self.models:
            mark = '  (read by profile "sunspec")' if m.id == self.energy_model else ""
            lines.append(f"model {m.id} {m.name} @ {m.address}, length {m.length}{mark}")
            for p in m.points:
                unit = f" {p.unit}" if p.unit else ""
                lines.append(f"    {p.name:<16} {_text(p.value)}{unit}")
            for name, value in m.fields.items():
                lines.append(f"  → {name} = {value}")
        return "\n".join(lines)


def scan(
    host: str = "",
    port: int = 502,
    unit_id: int = 1,
    serial_port: str | None = None,
    *,
    transport: str | None = None,
    baudrate: int = 9600,
    parity: str = "N",
    stopbits: int = 1,
    bytesize: int = 8,
    timeout_s: float = 2.0,
    retries: int = 1,
) -> ScanResult:
    """Discover the SunSpec models behind a unit id and decode every point heliod knows."""
    settings = ModbusDeviceSettings(
        id="scan",
        transport=transport or ("rtu" if serial_port else "tcp"),  # type: ignore[arg-type]
        host=host,
        port=port,
        serial_port=serial_port or "",
        baudrate=baudrate,
        parity=parity,
        stopbits=stopbits,
        bytesize=bytesize,
        unit_id=unit_id,
        timeout_s=timeout_s,
        retries=retries,
    )
    settings.validate()
    pool = ConnectionPool()
    try:
        reader = pool.reader(settings)
        base, refs = discover(reader)
        models: list[ScanModel] = []
        for ref in refs:
            layout = MODEL_LAYOUTS.get(ref.id)
            if layout is None:
                models.append(ScanModel(ref.id, "unknown", ref.address, ref.length))
                continue
            words = read_model(reader, ref)
            points = []
            for point in layout.points:
                value = point_value(layout, point, words)
                if value is not None and point.type not in ("sf", "pad"):
                    points.append(ScanPoint(point.name, value, point.unit))
            fields, _range = model_fields(layout, words)
            models.append(
                ScanModel(
                    ref.id, MODEL_NAMES[ref.id], ref.address, ref.length, tuple(points), fields
                )
            )
        try:
            energy_model: int | None = choose_energy_model(refs).id
        except PermanentError:  # a device without such a model still scans
            energy_model = None
        endpoint = serial_port or f"{host}:{port}"
        return ScanResult(endpoint, unit_id, base, tuple(models), energy_model)
    finally:
        pool.close()
