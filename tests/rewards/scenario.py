"""Random plants, devices and event streams for the property tests, made concrete.

Hypothesis draws small tuples (which device, what kind of reading, which time step, a
fraction); `materialize` turns them into arrivals with exact Decimal Wh values, share
rows and decision intents. `play` runs them through the gate and the `Accountant` the
way the daemon does, and resolves each decision intent against an open quarantined jump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from math import floor

from heliod.rewards.clocks import ClockReset, Seen
from heliod.rewards.energy import Anomaly, AnomalyKind, Bound
from heliod.rewards.ingest import Rejection, check
from heliod.rewards.ledger import Decision, PlantRules
from heliod.rewards.register import BEGINNING_US
from heliod.rewards.units import wh_to_mwh

from .accountant import Accountant

S = 1_000_000
H = 3600 * S
BASE_US = 1_704_067_200 * S  # 2024-01-01T00:00:00Z
FIVE_MIN = 300 * S
TEN_YEARS = 3650 * 24 * 3600 * S  # a gateway clock that jumped ahead (docs/accounting.md, "Clocks")
BACKERS = ("ann", "bob", "cy", "dan")
WEIGHTS = tuple(Decimal(w) for w in ("0", "1", "2", "3", "0.5", "1000.25", "1E+3", "7"))
STEPS_US = (S, 10 * S, 60 * S - 1, 60 * S, 60 * S + 1, 600 * S, 3 * H)
KINDS = (
    "normal",
    "normal",
    "normal",
    "same",
    "spike",
    "dip",
    "reset",
    "jump",
    "dupts",
    "ahead",
    "bad",
    "noenergy",
    "near_top",
    "clock_ahead",
)
BAD = (Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("-1.000"))


@dataclass(frozen=True)
class PlantSpec:
    """A plant: exact nameplate and overload, reward start, units per MWh."""

    id: str
    capacity_kw: Decimal
    max_overload: Decimal
    start_us: int | None
    units: int

    def rules(self, devices: tuple[DeviceSpec, ...]) -> PlantRules:
        """The ledger's view of this plant."""
        mine = frozenset(d.id for d in devices if d.plant == self.id)
        return PlantRules(
            self.id, Bound.of(self.capacity_kw, self.max_overload), mine, self.start_us
        )

    def shape_bound_wh(self, elapsed_us: int) -> Fraction:
        """Only to size generated deltas around the bound (the reference has its own)."""
        seconds = max(Fraction(elapsed_us, S), Fraction(60))
        return Fraction(self.capacity_kw) * 1000 * seconds / 3600 * Fraction(self.max_overload)


@dataclass(frozen=True)
class DeviceSpec:
    """An energy device of a plant; `range_wh` is the register's range when known."""

    id: str
    plant: str
    range_wh: Decimal | None
    initial_wh: Decimal


@dataclass(frozen=True)
class Arrival:
    """A reading as the store receives it: device time, gateway time, fields in Wh/W."""

    device: str
    ts_us: int
    received_us: int
    fields: tuple[tuple[str, Decimal], ...]
    range_wh: Decimal | None

    @property
    def energy_wh(self) -> Decimal | None:
        """The energy field, if any."""
        return dict(self.fields).get("energy_wh")


@dataclass(frozen=True)
class RowEvent:
    """A share row stored now."""

    plant: str
    backer: str
    weight: Decimal
    valid_from_us: int


@dataclass(frozen=True)
class DecideIntent:
    """An operator answering one of the open quarantined jumps (chosen by `pick`)."""

    pick: int
    accept: bool
    at_us: int


@dataclass(frozen=True)
class ResetIntent:
    """An operator resetting one device's clock (chosen by `pick`)."""

    pick: int
    at_us: int


@dataclass(frozen=True)
class ResetEvent:
    """A concrete clock reset, as stored: the device's newest rejected reading, if any."""

    device: str
    seen: tuple[Decimal, int] | None  # (Wh, timestamp)
    decided_at_us: int


@dataclass(frozen=True)
class DecisionEvent:
    """A concrete decision, as stored."""

    plant: str
    device: str
    reading_id: int
    accept: bool
    decided_at_us: int


Event = Arrival | RowEvent | DecideIntent | ResetIntent


@dataclass(frozen=True)
class Scenario:
    """Plants, devices and the events in store order."""

    plants: tuple[PlantSpec, ...]
    devices: tuple[DeviceSpec, ...]
    events: tuple[Event, ...]

    def rules(self) -> list[tuple[PlantRules, int]]:
        """(rules, units per MWh) per plant."""
        return [(p.rules(self.devices), p.units) for p in self.plants]


def floor3(x: Fraction) -> Decimal:
    """x rounded down to 0.001 Wh."""
    return Decimal(floor(x * 1000)).scaleb(-3)


def materialize(
    plants: tuple[PlantSpec, ...],
    devices: tuple[DeviceSpec, ...],
    draws: Sequence[tuple[object, ...]],
) -> Scenario:
    """Concrete events from drawn tuples (see test_properties for their shapes)."""
    plant = {p.id: p for p in plants}
    ts = {d.id: BASE_US + i * 7 * S for i, d in enumerate(devices)}
    value = {d.id: d.initial_wh for d in devices}
    clock = BASE_US
    events: list[Event] = []
    for draw in draws:
        if draw[0] == "row":
            _, pi, bi, wi, vf = draw
            assert isinstance(pi, int)
            assert isinstance(bi, int)
            assert isinstance(wi, int)
            assert vf is None or isinstance(vf, int)
            start = BEGINNING_US if vf is None else clock + vf
            events.append(RowEvent(plants[pi % len(plants)].id, BACKERS[bi], WEIGHTS[wi], start))
            continue
        if draw[0] == "decide":
            _, pick, accept = draw
            assert isinstance(pick, int)
            assert isinstance(accept, bool)
            events.append(DecideIntent(pick, accept, clock + S))
            continue
        if draw[0] == "clock":
            _, pick = draw
            assert isinstance(pick, int)
            events.append(ResetIntent(pick, clock + S))
            continue
        _, di, kind, si, frac = draw
        assert isinstance(di, int)
        assert isinstance(si, int)
        assert isinstance(frac, int)
        dev = devices[di % len(devices)]
        spec = plant[dev.plant]
        step = 0 if kind == "dupts" else STEPS_US[si]
        ts[dev.id] += step
        bound = spec.shape_bound_wh(step)
        v = value[dev.id]
        received = ts[dev.id]
        emit: Decimal | None = v
        if kind == "near_top" and dev.range_wh is not None:  # the next steps roll over
            v = emit = dev.range_wh - floor3(bound * frac / 1000) - Decimal("0.001")
        elif kind in ("normal", "ahead", "near_top", "clock_ahead"):
            v = emit = wrap(v + floor3(bound * frac / 1000), dev)
            if kind == "ahead":  # device clock exactly 5 min ahead (kept) or 1 µs more
                received = ts[dev.id] - FIVE_MIN - frac % 2
        elif kind == "jump":
            v = emit = wrap(v + floor3(bound * (1000 + frac) / 1000) + Decimal("0.001"), dev)
        elif kind == "reset":
            v = emit = floor3(bound * frac / 500)  # up to twice the bound
        elif kind == "spike":
            emit = v + floor3(spec.shape_bound_wh(60 * S) * (100 + frac) / 100) + Decimal("0.001")
        elif kind == "dip":
            emit = floor3(Fraction(v) * frac / 1001)
        elif kind == "bad":
            emit = BAD[frac % len(BAD)]
        elif kind == "noenergy":
            emit = None
        value[dev.id] = v
        clock = max(clock, ts[dev.id])
        # the store only ever sees values already rounded to 0.001 Wh (docs/accounting.md)
        assert emit is None or not emit.is_finite() or emit == emit.quantize(Decimal("0.001"))
        fields = (("power_w", Decimal(frac)),) if emit is None else (("energy_wh", emit),)
        stamped = ts[dev.id]
        if kind == "clock_ahead":  # the gateway's clock, which stamps and receives, jumped
            stamped = received = ts[dev.id] + TEN_YEARS
        events.append(Arrival(dev.id, stamped, received, fields, dev.range_wh))
    return Scenario(plants, devices, tuple(events))


def wrap(v: Decimal, dev: DeviceSpec) -> Decimal:
    """The register's value: the counter modulo its range when the range is known."""
    return v if dev.range_wh is None else v % dev.range_wh


LedgerRow = tuple[int, str, int, int | None, int | None]


@dataclass
class Played:
    """What the daemon stored and decided while playing a scenario."""

    acc: Accountant
    stored: list[LedgerRow] = field(default_factory=list)
    concrete: list[Arrival | RowEvent | DecisionEvent | ResetEvent] = field(default_factory=list)
    timeline: list[LedgerRow | RowEvent | Decision | ClockReset] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    resets: list[ClockReset] = field(default_factory=list)
    rejected: int = 0


def play(sc: Scenario) -> Played:
    """Gate, store ids, ledger, register and allocator in store order, as the daemon does."""
    out = Played(Accountant(sc.rules()))
    last_ts: dict[str, int] = {}
    last_id: dict[str, int] = {}  # each device's last stored reading
    refused: dict[str, Seen] = {}  # each device's newest reading rejected as not after
    open_jumps: list[Anomaly] = []
    for ev in sc.events:
        if isinstance(ev, RowEvent):
            out.acc.add_row(ev.plant, ev.backer, ev.weight, ev.valid_from_us)
            out.concrete.append(ev)
            out.timeline.append(ev)
        elif isinstance(ev, DecideIntent):
            if not open_jumps:
                continue
            a = open_jumps.pop(ev.pick % len(open_jumps))
            plant = out.acc.ledger.plant_of(a.device)
            assert plant is not None
            assert a.delta_mwh is not None
            position = out.stored[-1][0] if out.stored else 0
            decision = Decision(
                len(out.decisions) + 1,
                plant,
                a.device,
                a.reading_id,
                ev.accept,
                a.delta_mwh,
                ev.at_us,
                position,
            )
            out.acc.decide(decision)
            out.decisions.append(decision)
            out.timeline.append(decision)
            out.concrete.append(DecisionEvent(plant, a.device, a.reading_id, ev.accept, ev.at_us))
        elif isinstance(ev, ResetIntent):
            device = sc.devices[ev.pick % len(sc.devices)].id
            seen = refused.get(device)
            reset = ClockReset(len(out.resets) + 1, device, last_id.get(device, 0), ev.at_us, seen)
            last_ts.pop(device, None)  # the gate compares with later readings only
            out.acc.reset_clock(reset)
            out.resets.append(reset)
            out.timeline.append(reset)
            wh = None if seen is None else (Decimal(seen.value_mwh).scaleb(-3), seen.at_us)
            out.concrete.append(ResetEvent(device, wh, ev.at_us))
        else:
            out.concrete.append(ev)
            fields = dict(ev.fields)
            verdict = check(ev.ts_us, fields, last_ts.get(ev.device), ev.received_us)
            if not verdict.kept:
                out.rejected += 1
                if verdict.rejection is Rejection.NOT_AFTER_LAST and ev.energy_wh is not None:
                    refused[ev.device] = Seen(wh_to_mwh(ev.energy_wh), ev.ts_us)
                continue
            energy = ev.energy_wh
            if energy is not None:
                last_ts[ev.device] = ev.ts_us
            row: LedgerRow = (
                len(out.stored) + 1,
                ev.device,
                ev.ts_us,
                None if energy is None else wh_to_mwh(energy),
                None if ev.range_wh is None else wh_to_mwh(ev.range_wh),
            )
            out.stored.append(row)
            last_id[ev.device] = row[0]
            out.timeline.append(row)
            outcome = out.acc.feed(*row)
            if outcome.anomaly and outcome.anomaly.kind is AnomalyKind.IMPLAUSIBLE_JUMP:
                open_jumps.append(outcome.anomaly)
    return out
