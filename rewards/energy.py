"""One device's counter readings become accepted energy deltas, one reading late.

Per device we keep the last final reading F and one pending reading P. A new reading N
either exposes P as a spike or dip (outlier, dropped) or confirms it; the confirmed step
F→P is then judged against the plant's plausibility bound; the one step that crosses a
clock reset is measured from the reading the reset recorded (docs/accounting.md,
"Clocks"). Energy travels as integer mWh and time as integer microseconds, so every
comparison here is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from heliod.rewards.clocks import ResetMark

US_PER_S = 1_000_000
MIN_STEP_US = 60 * US_PER_S  # bound(t) uses max(t, 60 s)


class AnomalyKind(StrEnum):
    """The three anomalies (docs/accounting.md)."""

    OUTLIER = "outlier"
    COUNTER_RESET = "counter_reset"
    IMPLAUSIBLE_JUMP = "implausible_jump"


@dataclass(frozen=True, slots=True)
class Point:
    """A stored reading as the judge sees it: its store id, time (µs UTC) and counter (mWh)."""

    reading_id: int
    ts_us: int
    value_mwh: int


@dataclass(slots=True)
class DeviceState:
    """F (last final reading) and P (pending reading) of one energy device."""

    final: Point | None = None
    pending: Point | None = None
    reset: ResetMark | None = None  # a clock reset that no confirmed step has crossed yet


@dataclass(frozen=True, slots=True)
class Bound:
    """Plausibility bound: at most capacity_kw × max_overload over max(t, 60 s).

    bound(t) in mWh = capacity_kw × max_overload × max(t_us, 60e6) / 3600, kept as the
    exact fraction num/den of capacity_kw × max_overload.
    """

    num: int
    den: int

    @classmethod
    def of(cls, capacity_kw: Decimal, max_overload: Decimal) -> Bound:
        """Bound for a plant from its exact nameplate power and overload factor."""
        f = Fraction(capacity_kw) * Fraction(max_overload)
        return cls(f.numerator, f.denominator)

    def allows(self, delta_mwh: int, elapsed_us: int) -> bool:
        """True when delta_mwh ≤ bound(elapsed)."""
        return delta_mwh * self.den * 3600 <= self.num * max(elapsed_us, MIN_STEP_US)

    def most(self, elapsed_us: int) -> int:
        """bound(elapsed) in whole mWh: the largest delta_mwh that `allows`."""
        return self.num * max(elapsed_us, MIN_STEP_US) // (self.den * 3600)


@dataclass(frozen=True, slots=True)
class Step:
    """An accepted delta that enters the plant's energy E, placed at `ts_us`."""

    device: str
    reading_id: int  # the confirmed reading P (or the decision's position)
    ts_us: int  # P's timestamp, or the decision's time for an accepted jump
    delta_mwh: int


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An anomaly about the reading P; `credited_mwh` is what entered E because of it."""

    kind: AnomalyKind
    device: str
    reading_id: int
    reading_at_us: int
    value_mwh: int
    previous_mwh: int | None
    delta_mwh: int | None
    credited_mwh: int


def judge(
    state: DeviceState,
    device: str,
    new: Point,
    bound: Bound,
    range_mwh: int | None,
) -> tuple[Step | None, Anomaly | None]:
    """Apply reading N to the device's F/P state (mutated) and return what it decided."""
    p, f = state.pending, state.final
    state.pending = new
    if p is None:
        return None, None
    if f is None:
        if new.value_mwh >= p.value_mwh:
            state.final = p  # the baseline: credits nothing
            _crossed(state, p)
            return None, None
        return None, Anomaly(
            AnomalyKind.OUTLIER, device, p.reading_id, p.ts_us, p.value_mwh, None, None, 0
        )
    if f.value_mwh <= new.value_mwh and (p.value_mwh < f.value_mwh or p.value_mwh > new.value_mwh):
        return None, Anomaly(
            AnomalyKind.OUTLIER,
            device,
            p.reading_id,
            p.ts_us,
            p.value_mwh,
            f.value_mwh,
            p.value_mwh - f.value_mwh,
            0,
        )
    # P is confirmed and becomes F; judge the step F → P.
    state.final = p
    across = _crossed(state, p)
    elapsed = p.ts_us - f.ts_us
    raw = p.value_mwh - f.value_mwh
    if raw >= 0:
        if across is None:
            plausible = bound.allows(raw, elapsed)
        else:
            # F and P were stamped by different clocks: what the counter added after the
            # reading the operator was shown must fit the time since it (docs/accounting.md,
            # "Clocks").
            ref = across.reference(f.value_mwh, p.value_mwh)
            plausible = bound.allows(p.value_mwh - ref.value_mwh, p.ts_us - ref.at_us)
        if plausible:
            return _step(device, p, raw), None
        return None, Anomaly(
            AnomalyKind.IMPLAUSIBLE_JUMP,
            device,
            p.reading_id,
            p.ts_us,
            p.value_mwh,
            f.value_mwh,
            raw,
            0,
        )
    if range_mwh is not None and f.value_mwh * 10 > range_mwh * 9:
        wrapped = p.value_mwh + range_mwh - f.value_mwh
        if wrapped >= 0 and bound.allows(wrapped, elapsed):
            return _step(device, p, wrapped), None
    credited = p.value_mwh if bound.allows(p.value_mwh, elapsed) else 0
    anomaly = Anomaly(
        AnomalyKind.COUNTER_RESET,
        device,
        p.reading_id,
        p.ts_us,
        p.value_mwh,
        f.value_mwh,
        raw,
        credited,
    )
    return (_step(device, p, credited) if credited else None), anomaly


def _crossed(state: DeviceState, p: Point) -> ResetMark | None:
    """The clock reset that P, becoming F, steps across (then forgotten), if any.

    Every reading fed before a reset was stored before it, so the old F is always on
    the reset's near side: P stored after the reset makes the step cross it.
    """
    mark = state.reset
    if mark is None or not mark.crossed_by(p.reading_id):
        return None
    state.reset = None
    return mark


def _step(device: str, p: Point, delta_mwh: int) -> Step:
    return Step(device, p.reading_id, p.ts_us, delta_mwh)
