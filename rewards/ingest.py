"""The first gate: which incoming readings are rejected, never accounted (docs/accounting.md)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from heliod.rewards.units import MAX_ENERGY_WH

MAX_CLOCK_AHEAD_US = 5 * 60 * 1_000_000  # a device clock may run at most 5 min ahead
MAX_FIELD_VALUE = Decimal(10) ** 15  # any other field (power in W, volts, …): same bound


class Rejection(StrEnum):
    """Why a reading was rejected (counted per device, never accounted)."""

    NOT_AFTER_LAST = "timestamp_not_after_last"
    IN_FUTURE = "timestamp_in_future"
    NOT_FINITE = "value_not_finite"
    NEGATIVE = "value_negative"
    TOO_LARGE = "value_too_large"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer for one reading: rejected with a reason, or kept."""

    rejection: Rejection | None
    field: str | None = None  # the field whose value caused the rejection

    @property
    def kept(self) -> bool:
        """True when the reading is stored for accounting and export."""
        return self.rejection is None


KEPT = Verdict(None)


def check(
    ts_us: int,
    fields: dict[str, Decimal],
    last_energy_ts_us: int | None,
    received_at_us: int,
) -> Verdict:
    """Judge one reading against the device's last kept energy timestamp and the gateway clock."""
    if ts_us > received_at_us + MAX_CLOCK_AHEAD_US:
        return Verdict(Rejection.IN_FUTURE)
    for name, value in fields.items():
        if not value.is_finite():
            return Verdict(Rejection.NOT_FINITE, name)
    for name, value in fields.items():
        # Stored as integer milli-units in a 64-bit column: a glitching register
        # (an f32 reading 3.4e38, say) must be refused alone, not fail its whole batch.
        if name != "energy_wh" and abs(value) > MAX_FIELD_VALUE:
            return Verdict(Rejection.TOO_LARGE, name)
    energy = fields.get("energy_wh")
    if energy is not None:
        if energy < 0:
            return Verdict(Rejection.NEGATIVE, "energy_wh")
        if energy > MAX_ENERGY_WH:
            return Verdict(Rejection.TOO_LARGE, "energy_wh")
        if last_energy_ts_us is not None and ts_us <= last_energy_ts_us:
            return Verdict(Rejection.NOT_AFTER_LAST, "energy_wh")
    return KEPT
