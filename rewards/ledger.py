"""A plant's accounted energy E and the MWh it completes, over all its devices.

The ledger is fed every stored reading in store order (and the anomaly decisions and
clock resets at their recorded positions) and answers with the steps that entered E,
the anomalies it saw and the MWh that became due. It holds no clock and no database:
its whole state is `LedgerState`, which the store persists in the same transaction as
what it produced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from heliod.rewards.clocks import ClockReset, ResetMark
from heliod.rewards.energy import Anomaly, Bound, DeviceState, Point, Step, judge

WH_PER_MWH_IN_MWH = 10**9  # 1 MWh = 10^6 Wh = 10^9 mWh


@dataclass(frozen=True, slots=True)
class PlantRules:
    """What the ledger needs to know about a plant."""

    id: str
    bound: Bound
    energy_devices: frozenset[str]
    start_us: int | None  # readings before this are never accounted


@dataclass(frozen=True, slots=True)
class PlantBook:
    """A plant's rules and its token: what the accountant and the ledger's readers need."""

    rules: PlantRules
    units_per_mwh: int
    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True)
class Decision:
    """An operator's decision on a quarantined `implausible_jump`, at its store position."""

    id: int
    plant: str
    device: str
    reading_id: int  # the anomaly's reading P
    accept: bool
    delta_mwh: int
    decided_at_us: int
    position: int  # last reading id committed before the decision
    reading_at_us: int | None = None  # P's timestamp: where the Δ is placed in time


@dataclass(frozen=True, slots=True)
class MintDue:
    """MWh number `mwh_index` of `plant` completed at `completed_at_us`."""

    plant: str
    mwh_index: int
    completed_at_us: int


@dataclass(slots=True)
class PlantEnergy:
    """Accounted energy E of a plant and the number of MWh it completed."""

    e_mwh: int = 0
    mwh_completed: int = 0


@dataclass(slots=True)
class LedgerState:
    """Everything the ledger remembers between two batches."""

    position: int = 0  # id of the last reading fed
    last_decision_id: int = 0
    last_reset_id: int = 0  # the last clock reset applied
    devices: dict[str, DeviceState] = field(default_factory=dict)
    plants: dict[str, PlantEnergy] = field(default_factory=dict)

    def to_json(self) -> str:
        """Compact JSON for the store (integers only, so it round-trips exactly)."""

        def point(p: Point | None) -> list[int] | None:
            return None if p is None else [p.reading_id, p.ts_us, p.value_mwh]

        def device(s: DeviceState) -> list[Any]:
            # A reset mark is written only while there is one: states without are unchanged.
            fp: list[Any] = [point(s.final), point(s.pending)]
            return fp if s.reset is None else [*fp, s.reset.to_json()]

        return json.dumps(
            {
                "position": self.position,
                "last_decision_id": self.last_decision_id,
                "last_reset_id": self.last_reset_id,
                "devices": {d: device(s) for d, s in sorted(self.devices.items())},
                "plants": {p: [e.e_mwh, e.mwh_completed] for p, e in sorted(self.plants.items())},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> LedgerState:
        """Inverse of `to_json`."""
        raw = json.loads(text)

        def point(v: list[int] | None) -> Point | None:
            return None if v is None else Point(int(v[0]), int(v[1]), int(v[2]))

        def device(v: list[Any]) -> DeviceState:
            mark = ResetMark.from_json(v[2]) if len(v) > 2 else None
            return DeviceState(point(v[0]), point(v[1]), mark)

        return cls(
            position=int(raw["position"]),
            last_decision_id=int(raw["last_decision_id"]),
            last_reset_id=int(raw.get("last_reset_id", 0)),
            devices={d: device(v) for d, v in raw["devices"].items()},
            plants={p: PlantEnergy(int(e), int(c)) for p, (e, c) in raw["plants"].items()},
        )


@dataclass(slots=True)
class Outcome:
    """What one reading or decision produced."""

    step: Step | None = None
    anomaly: Anomaly | None = None
    mints: list[MintDue] = field(default_factory=list)
    plant: str | None = None


NOTHING = Outcome()


class Ledger:
    """Feeds readings per device and turns accepted energy into due MWh (docs/accounting.md)."""

    def __init__(self, plants: Iterable[PlantRules], state: LedgerState | None = None) -> None:
        self.state = state or LedgerState()
        self.rules = {p.id: p for p in plants}
        self._plant_of: dict[str, PlantRules] = {}
        for rules in self.rules.values():
            self.state.plants.setdefault(rules.id, PlantEnergy())
            for device in rules.energy_devices:
                self._plant_of[device] = rules

    def plant_of(self, device: str) -> str | None:
        """The plant whose energy this device counts, if any."""
        rules = self._plant_of.get(device)
        return None if rules is None else rules.id

    def in_reach(self, plant: str, until_us: int) -> int:
        """The most E (mWh) can become with energy dated at or before `until_us`.

        That is E plus, for each energy device whose pending reading P is dated at or
        before `until_us` and has a final reading F, the most the step F → P can add once
        a later reading confirms P (docs/milestones.md, "Challenges"): P − F when it fits
        the plausibility bound (a larger one is quarantined, and an operator's acceptance
        is dated when it is decided), at most bound(t) when P < F (a rollover or a
        restarted counter). Without F, P only becomes the baseline and adds nothing.
        """
        rules = self.rules[plant]
        total = self.state.plants[plant].e_mwh
        for d in rules.energy_devices:
            s = self.state.devices.get(d)
            if s is None or s.pending is None or s.final is None or s.pending.ts_us > until_us:
                continue
            p, f = s.pending, s.final
            elapsed = p.ts_us - f.ts_us
            raw = p.value_mwh - f.value_mwh
            if raw < 0:
                total += rules.bound.most(elapsed)
            elif s.reset is not None and s.reset.crossed_by(p.reading_id):
                total += raw  # judged across a clock reset: counted whole, to be safe
            elif rules.bound.allows(raw, elapsed):
                total += raw
        return total

    def feed(
        self,
        reading_id: int,
        device: str,
        ts_us: int,
        energy_mwh: int | None,
        range_mwh: int | None = None,
    ) -> Outcome:
        """Account one stored reading (readings must come in store order)."""
        if reading_id <= self.state.position:
            raise ValueError(f"reading {reading_id} fed after {self.state.position}")
        self.state.position = reading_id
        rules = self._plant_of.get(device)
        if rules is None or energy_mwh is None:
            return NOTHING
        if rules.start_us is not None and ts_us < rules.start_us:
            return NOTHING
        dev = self.state.devices.get(device)
        if dev is None:
            dev = self.state.devices[device] = DeviceState()
        step, anomaly = judge(
            dev, device, Point(reading_id, ts_us, energy_mwh), rules.bound, range_mwh
        )
        if step is None and anomaly is None:
            return NOTHING
        out = Outcome(step=step, anomaly=anomaly, plant=rules.id)
        if step is not None and step.delta_mwh:
            out.mints = self._add(rules.id, step.delta_mwh, step.ts_us)
        return out

    def decide(self, decision: Decision) -> Outcome:
        """Apply a decision once every reading at or before its position has been fed."""
        if decision.id <= self.state.last_decision_id:
            raise ValueError(f"decision {decision.id} applied twice")
        self.state.last_decision_id = decision.id
        if not decision.accept or decision.delta_mwh <= 0:
            return Outcome(plant=decision.plant)
        placed_at = (
            decision.reading_at_us if decision.reading_at_us is not None else decision.decided_at_us
        )
        step = Step(decision.device, decision.reading_id, placed_at, decision.delta_mwh)
        self.state.plants.setdefault(decision.plant, PlantEnergy())
        return Outcome(
            step=step,
            plant=decision.plant,
            mints=self._add(decision.plant, decision.delta_mwh, decision.decided_at_us),
        )

    def reset_clock(self, reset: ClockReset) -> None:
        """Apply a clock reset once every reading at or before its position has been fed.

        F, P and E are untouched: the device's next confirmed step is judged across the
        reset (rewards/energy.py), the ingest gate already compares with later readings only.
        """
        if reset.id <= self.state.last_reset_id:
            raise ValueError(f"clock reset {reset.id} applied twice")
        self.state.last_reset_id = reset.id
        dev = self.state.devices.get(reset.device)
        if dev is not None and (dev.final is not None or dev.pending is not None):
            dev.reset = ResetMark.of(reset)

    def _add(self, plant: str, delta_mwh: int, ts_us: int) -> list[MintDue]:
        energy = self.state.plants[plant]
        energy.e_mwh += delta_mwh
        due: list[MintDue] = []
        while (energy.mwh_completed + 1) * WH_PER_MWH_IN_MWH <= energy.e_mwh:
            energy.mwh_completed += 1
            due.append(MintDue(plant, energy.mwh_completed, ts_us))
        return due

    def run(
        self,
        readings: Iterable[tuple[int, str, int, int | None, int | None]],
        decisions: Sequence[Decision],
        caught_up: bool,
        scanned: int | None = None,
        resets: Sequence[ClockReset] = (),
    ) -> Iterable[Outcome]:
        """Feed readings (id, device, ts_us, energy_mwh, range_mwh) with decisions interleaved.

        A decision (or clock reset) enters right after the last reading at or before its
        position. At the end of a batch that reached the newest stored reading
        (`caught_up`), those whose position is at or before `scanned` (the last reading
        id the batch looked at, energy or not; default: the last one fed) are applied; a
        later one waits for the batch that reaches its position, so a replay puts it in
        the same place. Decisions and resets touch different things (E; one device's next
        step), so their order at one position does not matter.
        """
        pending = [
            d for d in sorted(decisions, key=lambda d: d.id) if d.id > self.state.last_decision_id
        ]
        clocks = [r for r in sorted(resets, key=lambda r: r.id) if r.id > self.state.last_reset_id]
        i = j = 0
        for reading in readings:
            while i < len(pending) and pending[i].position < reading[0]:
                yield self.decide(pending[i])
                i += 1
            while j < len(clocks) and clocks[j].position < reading[0]:
                self.reset_clock(clocks[j])  # it produces nothing by itself
                j += 1
            yield self.feed(*reading)
        if scanned is not None:
            self.state.position = max(self.state.position, scanned)
        if caught_up:
            while i < len(pending) and pending[i].position <= self.state.position:
                yield self.decide(pending[i])
                i += 1
            while j < len(clocks) and clocks[j].position <= self.state.position:
                self.reset_clock(clocks[j])
                j += 1
