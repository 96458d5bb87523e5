"""An independent, slow, literal model of docs/accounting.md for the property tests.

Written from the contract's sentences, not from heliod.rewards: energy in Decimal Wh,
bounds and entitlements as Fractions, the share register scanned row by row for every
mint, each allocation recomputed from scratch. Nothing here is fast or clever on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from math import floor

from .scenario import Arrival, DecisionEvent, ResetEvent, RowEvent, Scenario

ONE_MWH_WH = Decimal(1_000_000)
MAX_WH = Decimal(10) ** 15
FIVE_MINUTES_US = 5 * 60 * 1_000_000

# (kind, device, reading id, value Wh, previous Wh or None, P − F Wh or None, credited Wh)
RefAnomaly = tuple[str, str, int, Decimal, Decimal | None, Decimal | None, Decimal]


@dataclass(frozen=True)
class Seen:
    """A stored energy reading: store id, timestamp, counter in Wh."""

    id: int
    ts_us: int
    wh: Decimal


@dataclass(frozen=True)
class Reset:
    """A clock reset the device has not stepped across yet: its position, what it saw."""

    position: int  # the device's last stored reading when it was decided
    seen: tuple[Decimal, int] | None  # its newest rejected reading (Wh, time), if any
    decided_at_us: int


@dataclass
class RefResult:
    """What the contract says should come out of a scenario."""

    stored: list[tuple[int, str]] = field(default_factory=list)
    anomalies: list[RefAnomaly] = field(default_factory=list)
    energy_wh: dict[str, Decimal] = field(default_factory=dict)
    energy_history: list[Decimal] = field(default_factory=list)
    mints: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)  # k, T, pos
    credits: dict[str, dict[int, dict[str, int]]] = field(default_factory=dict)
    undistributed: dict[str, list[int]] = field(default_factory=dict)


def reference(
    sc: Scenario, events: Sequence[Arrival | RowEvent | DecisionEvent | ResetEvent]
) -> RefResult:
    """Run the contract by hand over the stored events (decisions made concrete)."""
    plants = {p.id: p for p in sc.plants}
    device_plant = {d.id: d.plant for d in sc.devices}
    res = RefResult(energy_wh={p: Decimal(0) for p in plants}, mints={p: [] for p in plants})
    rows: dict[str, list[tuple[int, RowEvent]]] = {p: [] for p in plants}
    row_count = 0
    last_kept_ts: dict[str, int] = {}
    final: dict[str, Seen] = {}
    pending: dict[str, Seen] = {}
    quarantined: dict[int, tuple[str, Decimal]] = {}  # reading id → (plant, P − F)
    last_stored: dict[str, int] = {}  # device → id of its last stored reading
    resets: dict[str, Reset] = {}

    def accept(plant: str, delta: Decimal, at_us: int) -> None:
        # "MWh number k completes when E first reaches k × 1,000,000 Wh", at `at_us`.
        before = res.energy_wh[plant]
        res.energy_wh[plant] = before + delta
        res.energy_history.append(res.energy_wh[plant])
        k = len(res.mints[plant])
        while res.energy_wh[plant] >= (k + 1) * ONE_MWH_WH:
            k += 1
            pos = rows[plant][-1][0] if rows[plant] else 0  # rows stored before this mint
            res.mints[plant].append((k, at_us, pos))

    for ev in events:
        if isinstance(ev, RowEvent):
            row_count += 1
            rows[ev.plant].append((row_count, ev))
            continue
        if isinstance(ev, DecisionEvent):
            plant, delta = quarantined.pop(ev.reading_id)  # KeyError: no such open jump
            if ev.accept:
                accept(plant, delta, ev.decided_at_us)
            continue
        if isinstance(ev, ResetEvent):
            # "Clocks": the gate compares only with readings stored after the decision.
            last_kept_ts.pop(ev.device, None)
            position = last_stored.get(ev.device, 0)
            resets[ev.device] = Reset(position, ev.seen, ev.decided_at_us)
            continue
        assert isinstance(ev, Arrival)
        if not _passes_gate(ev, last_kept_ts):
            continue
        if ev.energy_wh is not None:
            last_kept_ts[ev.device] = ev.ts_us
        reading_id = len(res.stored) + 1
        res.stored.append((reading_id, ev.device))
        last_stored[ev.device] = reading_id
        plant_id = device_plant.get(ev.device)
        if plant_id is None or ev.energy_wh is None:
            continue
        spec = plants[plant_id]
        if spec.start_us is not None and ev.ts_us < spec.start_us:
            continue  # stored and exported, never accounted
        n = Seen(reading_id, ev.ts_us, ev.energy_wh)
        p = pending.get(ev.device)
        f = final.get(ev.device)
        pending[ev.device] = n  # in every case below, "N becomes P"
        if p is None:
            continue
        # "Clocks": the first step confirmed after a reset, from F stored before it to P
        # stored after it, is judged from the newest rejected reading (V at T) the
        # decision recorded, or from F's value at the decision's time.
        reset = resets.get(ev.device)
        across = reset is not None and p.id > reset.position
        if f is None:
            if n.wh >= p.wh:
                final[ev.device] = p  # the baseline, credits nothing
                if across:
                    del resets[ev.device]
            else:
                res.anomalies.append(("outlier", ev.device, p.id, p.wh, None, None, Decimal(0)))
            continue
        if f.wh <= n.wh and (p.wh < f.wh or p.wh > n.wh):
            res.anomalies.append(("outlier", ev.device, p.id, p.wh, f.wh, p.wh - f.wh, Decimal(0)))
            continue
        final[ev.device] = p
        limit = _bound_wh(spec.capacity_kw, spec.max_overload, p.ts_us - f.ts_us)
        plausible = p.wh - f.wh <= limit
        if across:
            assert reset is not None
            v, t = reset.seen or (f.wh, reset.decided_at_us)
            if not f.wh <= v <= p.wh:  # V counts only inside the step: F ≤ V ≤ P
                v, t = f.wh, reset.decided_at_us
            plausible = p.wh - v <= _bound_wh(spec.capacity_kw, spec.max_overload, p.ts_us - t)
            del resets[ev.device]
        rng = ev.range_wh
        if p.wh >= f.wh:
            if plausible:
                accept(plant_id, p.wh - f.wh, p.ts_us)
            else:
                jump = ("implausible_jump", ev.device, p.id, p.wh, f.wh, p.wh - f.wh, Decimal(0))
                res.anomalies.append(jump)
                quarantined[p.id] = (plant_id, p.wh - f.wh)
        elif rng is not None and f.wh > Decimal("0.9") * rng and 0 <= p.wh + rng - f.wh <= limit:
            # (a wrapped Δ < 0 needs F above the register's range, which no register can
            # report; it stays a reset rather than taking energy away)
            accept(plant_id, p.wh + rng - f.wh, p.ts_us)
        else:
            credited = p.wh if p.wh <= limit else Decimal(0)
            res.anomalies.append(
                ("counter_reset", ev.device, p.id, p.wh, f.wh, p.wh - f.wh, credited)
            )
            if credited:
                accept(plant_id, credited, p.ts_us)

    for plant_id, spec in plants.items():
        res.credits[plant_id], res.undistributed[plant_id] = _allocate(
            spec.units, res.mints[plant_id], rows[plant_id]
        )
    return res


def _passes_gate(ev: Arrival, last_kept_ts: dict[str, int]) -> bool:
    # docs/accounting.md, "Rejected readings".
    if ev.ts_us > ev.received_us + FIVE_MINUTES_US:
        return False
    energy = ev.energy_wh
    if energy is None:
        return True
    if energy.is_nan() or energy.is_infinite() or energy < 0 or energy > MAX_WH:
        return False
    last = last_kept_ts.get(ev.device)
    return last is None or ev.ts_us > last


def _bound_wh(capacity_kw: Decimal, max_overload: Decimal, elapsed_us: int) -> Fraction:
    # bound(t) = capacity_kw × 1000 × max(t, 60) / 3600 × max_overload (Wh)
    t = Fraction(elapsed_us, 1_000_000)
    return Fraction(capacity_kw) * 1000 * max(t, Fraction(60)) / 3600 * Fraction(max_overload)


def weights_at(stored: list[tuple[int, RowEvent]], t_us: int, upto_id: int) -> dict[str, Fraction]:
    """Each backer's latest row with valid_from ≤ T among rows stored up to `upto_id`."""
    best: dict[str, tuple[int, int, Decimal]] = {}
    for row_id, row in stored:
        if row_id > upto_id or row.valid_from_us > t_us:
            continue
        current = best.get(row.backer)
        if current is None or (row.valid_from_us, row_id) > current[:2]:
            best[row.backer] = (row.valid_from_us, row_id, row.weight)
    return {b: Fraction(w) for b, (_, _, w) in best.items() if w > 0}


def _allocate(
    units: int,
    mints: list[tuple[int, int, int]],
    stored: list[tuple[int, RowEvent]],
) -> tuple[dict[int, dict[str, int]], list[int]]:
    """Credits per mint from A_b(n) = Σ_{i≤n} U × w_b(T_i) / W(T_i), recomputed each time."""
    credits: dict[int, dict[str, int]] = {}
    undistributed: list[int] = []
    shares: list[dict[str, Fraction]] = []
    for k, t_us, pos in mints:
        w = weights_at(stored, t_us, pos)
        total = sum(w.values(), Fraction(0))
        shares.append({b: units * x / total for b, x in w.items()} if total else {})
        backers = {b for s in shares for b in s}
        now = {b: sum(s.get(b, Fraction(0)) for s in shares) for b in backers}
        before = {b: sum(s.get(b, Fraction(0)) for s in shares[:-1]) for b in backers}
        credits[k] = {
            b: floor(now[b]) - floor(before[b]) for b in backers if floor(now[b]) > floor(before[b])
        }
        credited = sum(floor(a) for a in now.values())
        undistributed.append(units * len(shares) - credited)
    return credits, undistributed
