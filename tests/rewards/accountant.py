"""Plays the daemon's role around the pure domain, as the store and scheduler will.

Readings go through the ingest gate, get store ids and are fed to the `Ledger`; every
`MintDue` is credited at once with the share rows stored so far (`register_pos`), so a
late row only applies to later mints. The books it keeps are what `verify_plant` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from heliod.rewards.allocation import Allocator
from heliod.rewards.clocks import ClockReset
from heliod.rewards.energy import Anomaly
from heliod.rewards.ledger import Decision, Ledger, LedgerState, MintDue, Outcome, PlantRules
from heliod.rewards.register import Register, ShareRow
from heliod.rewards.verify import MintRecord, verify_plant


@dataclass
class Books:
    """One plant's share register, allocator and the mints and credits committed so far."""

    units_per_mwh: int
    register: Register = field(default_factory=Register)
    rows: list[ShareRow] = field(default_factory=list)  # as stored, for verify_plant
    mints: list[MintRecord] = field(default_factory=list)
    credits: dict[int, dict[str, int]] = field(default_factory=dict)
    allocator: Allocator = field(init=False)

    def __post_init__(self) -> None:
        self.allocator = Allocator(self.units_per_mwh)

    def balances(self) -> dict[str, int]:
        """Sum of the credit rows per backer."""
        out: dict[str, int] = {}
        for per_backer in self.credits.values():
            for backer, units in per_backer.items():
                out[backer] = out.get(backer, 0) + units
        return out


class Accountant:
    """Ledger + Register + Allocator per plant, committing each mint as the daemon does."""

    def __init__(
        self, plants: Sequence[tuple[PlantRules, int]], state: LedgerState | None = None
    ) -> None:
        self.ledger = Ledger([rules for rules, _ in plants], state)
        self.books = {rules.id: Books(units) for rules, units in plants}
        self.outcomes: list[Outcome] = []
        self.anomalies: list[Anomaly] = []
        self._row_id = 0

    def add_row(self, plant: str, backer: str, weight: str | Decimal, valid_from_us: int) -> int:
        """Store one share row now (ids are global store order); returns its id."""
        self._row_id += 1
        row = ShareRow(self._row_id, backer, Decimal(weight), valid_from_us)
        self.books[plant].register.add(row)
        self.books[plant].rows.append(row)
        return self._row_id

    def feed(
        self,
        reading_id: int,
        device: str,
        ts_us: int,
        energy_mwh: int | None,
        range_mwh: int | None = None,
    ) -> Outcome:
        """Account one stored reading and commit whatever it minted."""
        return self.commit(self.ledger.feed(reading_id, device, ts_us, energy_mwh, range_mwh))

    def decide(self, decision: Decision) -> Outcome:
        """Apply one anomaly decision and commit whatever it minted."""
        return self.commit(self.ledger.decide(decision))

    def reset_clock(self, reset: ClockReset) -> None:
        """Apply one clock reset decision (it never mints by itself)."""
        self.ledger.reset_clock(reset)

    def commit(self, outcome: Outcome) -> Outcome:
        """Credit every due MWh of an outcome with the register as stored right now."""
        self.outcomes.append(outcome)
        if outcome.anomaly is not None:
            self.anomalies.append(outcome.anomaly)
        for due in outcome.mints:
            self.mint(due)
        return outcome

    def mint(self, due: MintDue) -> MintRecord:
        """What the daemon does for one MintDue, in the mint's transaction."""
        books = self.books[due.plant]
        pos = books.register.last_id
        books.allocator.use(books.register.weights_at(due.completed_at_us, pos))
        credits = dict(books.allocator.mint())
        record = MintRecord(
            due.plant,
            due.mwh_index,
            due.completed_at_us,
            books.units_per_mwh,
            pos,
            books.allocator.undistributed,
        )
        books.mints.append(record)
        books.credits[due.mwh_index] = credits
        return record

    def energy_mwh(self, plant: str) -> int:
        """The plant's accounted energy E in mWh."""
        return int(self.ledger.state.plants[plant].e_mwh)

    def verify(self, plant: str) -> list[str]:
        """docs/accounting.md invariants over this plant's books, as `ledger verify` would check them."""
        books = self.books[plant]
        problems: list[str] = verify_plant(
            plant,
            units_per_mwh=books.units_per_mwh,
            mints=books.mints,
            credits=books.credits,
            rows=books.rows,
            balances=books.balances(),
        )
        return problems
