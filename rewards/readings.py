"""What every device adapter hands to the store: one reading (docs/accounting.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

ENERGY = "energy_wh"  # cumulative exported energy counter, Wh
POWER = "power_w"  # instantaneous AC power, W


@dataclass(frozen=True, slots=True)
class Reading:
    """One successful poll or message: a UTC timestamp and named numeric fields.

    Field values are already converted to base units (Wh, W) and rounded to 0.001 by
    `rewards.units`; they may still be NaN or infinite, which the store rejects.
    A field that the device marks "not implemented" is simply absent.
    """

    device: str
    ts: datetime  # timezone-aware; stored as UTC
    fields: Mapping[str, Decimal] = field(default_factory=dict)
    # Range of the energy register in Wh (2^bits × scale × unit), when known: Modbus only.
    counter_range_wh: Decimal | None = None

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None:
            raise ValueError("Reading.ts must be timezone-aware")

    @property
    def energy_wh(self) -> Decimal | None:
        """The energy counter in Wh, if the reading has one."""
        return self.fields.get(ENERGY)

    @property
    def power_w(self) -> Decimal | None:
        """The AC power in W, if the reading has one."""
        return self.fields.get(POWER)


def utc(ts: datetime) -> datetime:
    """The same instant in UTC."""
    return ts.astimezone(UTC)
