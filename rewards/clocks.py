"""Clocks that went wrong: the device state `clock` and the clock reset decision.

A gateway without a battery-backed clock may run years ahead for a while. Readings it
stamps then are stored (they are not ahead of the clock that stamps them); once the
clock is right again, every new reading of the device is "not after the last reading"
and rejected. The device is then in state `clock` until an operator records a clock
reset decision (docs/accounting.md, "Clocks"), which the ledger replays at its position
like an anomaly decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heliod.rewards.ingest import MAX_CLOCK_AHEAD_US


def is_ahead(newest_ts_us: int | None, now_us: int) -> bool:
    """True when a device's newest stored reading is more than 5 minutes ahead of `now_us`."""
    return newest_ts_us is not None and newest_ts_us - now_us > MAX_CLOCK_AHEAD_US


@dataclass(frozen=True, slots=True)
class Seen:
    """A counter value read on the right clock: what a reset decision lets the step carry."""

    value_mwh: int
    at_us: int


@dataclass(frozen=True, slots=True)
class ClockReset:
    """An operator's clock reset decision for one device, at its store position."""

    id: int
    device: str
    position: int  # id of the device's last stored reading when it was decided (0: none)
    decided_at_us: int
    seen: Seen | None = None  # the device's newest rejected reading then, if any


@dataclass(frozen=True, slots=True)
class ResetMark:
    """A reset the device's F/P state has not stepped across yet."""

    position: int
    decided_at_us: int
    seen: Seen | None

    @classmethod
    def of(cls, reset: ClockReset) -> ResetMark:
        """The mark a reset leaves on its device."""
        return cls(reset.position, reset.decided_at_us, reset.seen)

    def crossed_by(self, reading_id: int) -> bool:
        """True for a reading stored after the decision."""
        return reading_id > self.position

    def reference(self, final_mwh: int, pending_mwh: int) -> Seen:
        """Where the step F → P across the reset is measured from on the right clock.

        The newest rejected reading V when F ≤ V ≤ P (the counter value and time the
        operator was shown); otherwise F's value at the decision's time. A V above P
        would make P − V negative and let a step of any size in; one below F is no
        reading of this step either (docs/accounting.md, "Clocks").
        """
        seen = self.seen
        if seen is not None and final_mwh <= seen.value_mwh <= pending_mwh:
            return seen
        return Seen(final_mwh, self.decided_at_us)

    def to_json(self) -> list[int | None]:
        """[position, decided_at_us, seen value or null, seen time or null]."""
        if self.seen is None:
            return [self.position, self.decided_at_us, None, None]
        return [self.position, self.decided_at_us, self.seen.value_mwh, self.seen.at_us]

    @classmethod
    def from_json(cls, raw: Sequence[int | None]) -> ResetMark:
        """Inverse of `to_json`."""
        position, decided, value, at = raw
        if position is None or decided is None:
            raise ValueError(f"not a clock reset mark: {raw!r}")
        seen = None if value is None or at is None else Seen(int(value), int(at))
        return cls(int(position), int(decided), seen)
