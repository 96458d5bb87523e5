"""The accountant: stored readings in, mints and credits out, one transaction per batch.

Each batch loads the ledger state, feeds the next readings (and any anomaly decision at
its position) through `rewards`, and commits the anomalies, the energy, every mint with
its credits and push body, the milestone and challenge events of those mints, and the
new state together. A crash anywhere rolls the whole batch back; the next run starts
from the last committed state, so no MWh is minted twice and none is lost, and no event
is stored twice or lost (docs/milestones.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import repeat

from heliod.adapters.store import Connection, Store, credits_repo, goals_repo
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store.clocks import clock_resets_after
from heliod.daemon.jobs.crediting import write_credits
from heliod.daemon.jobs.ledger_log import LogSigner, MintLog
from heliod.rewards.allocation import Allocator, Credits
from heliod.rewards.energy import Anomaly
from heliod.rewards.events import mint_body
from heliod.rewards.goals import ChallengeSettled, GoalBook, GoalEvent, Placement, PlantGoals
from heliod.rewards.ledger import Ledger, LedgerState, PlantBook
from heliod.rewards.register import InForce, Register
from heliod.rewards.times import rfc3339
from heliod.rewards.verify import MintRecord

log = logging.getLogger("heliod.accountant")


class LedgerMismatch(Exception):
    """The stored credits are not what the stored mints and register explain."""


@dataclass(frozen=True, slots=True)
class Minted:
    """One mint of a batch, as the log tells it once the batch is committed."""

    plant: str
    mwh_index: int
    completed_at_us: int
    units: int
    backers: int  # backers credited by this mint
    undistributed: int  # the plant's undistributed balance after it
    backed: bool  # a positive weight was in force at its completion time


@dataclass(frozen=True, slots=True)
class Unbacked:
    """A plant whose latest mint found no positive weight in force (docs/operations.md)."""

    mwh_index: int
    completed_at_us: int


@dataclass(slots=True)
class BatchResult:
    """What one batch committed."""

    readings: int = 0
    anomalies: int = 0
    mints: list[tuple[str, int]] = field(default_factory=list)
    caught_up: bool = True
    position: int = 0
    minted: list[Minted] = field(default_factory=list)


class Accountant:
    """Runs batches; keeps the registers and allocators in memory between them."""

    def __init__(
        self,
        store: Store,
        books: Iterable[PlantBook],
        clock_us: Callable[[], int],
        batch_size: int = 5000,
        *,
        goals: Iterable[PlantGoals] = (),
        log: LogSigner | None = None,
    ) -> None:
        self.store = store
        # The verifiable ledger (docs/verification.md); None only where a test or a bench
        # looks at the accounting alone.
        self._log = None if log is None else MintLog(log)
        self.books = {b.rules.id: b for b in books}
        self.goals = {g.plant: g for g in goals if g.plant in self.books}
        self.clock_us = clock_us
        self.batch_size = batch_size
        self.devices = sorted({d for b in self.books.values() for d in b.rules.energy_devices})
        # Kept between batches: the register changes rarely, and rebuilding an allocator
        # replays every mint. An allocator's backers are those with a balances row once
        # committed; it marks those a batch changed: credited, or in force for the first
        # time (written with 0), so a mint writes their rows only, not every backer's.
        self._registers: dict[str, Register] = {}
        self._allocators: dict[str, Allocator] = {}
        self._unbacked: dict[str, Unbacked] = {}  # as committed
        self._backing_known: set[str] = set()  # plants whose _unbacked entry is up to date
        self._unsummed: set[str] = set()  # plants with a mint the store did not add up

    def run(self, max_batches: int | None = None) -> BatchResult:
        """Account every reading the ledger allows now; returns the totals."""
        total = BatchResult()
        batches = 0
        while True:
            result = self.batch()
            batches += 1
            total.readings += result.readings
            total.anomalies += result.anomalies
            total.mints.extend(result.mints)
            total.position = result.position
            total.caught_up = result.caught_up
            if result.caught_up or (max_batches is not None and batches >= max_batches):
                return total

    def batch(self) -> BatchResult:
        """One transaction: the next readings through the ledger, committed with what they made."""
        try:
            with self.store.write() as conn:
                result = self._batch(conn)
        except BaseException:
            # What the failed batch did to the in-memory allocators was rolled back in
            # the store: rebuild them from what is committed.
            self._allocators.clear()
            if self._log is not None:
                self._log.forget()
            raise
        # Only now is anything minted: a batch rolled back and retried never logs twice.
        self._committed(result.minted)
        return result

    def unbacked(self) -> dict[str, Unbacked]:
        """Plants whose latest committed mint found no backer in force (for /healthz).

        Until this accountant's first batch has read a plant's ledger, the plant's answer
        is read from the store: a restarted daemon says so at once, even while its
        accounting cannot run.
        """
        found = dict(self._unbacked)
        missing = [p for p in self.books if p not in self._backing_known]
        if missing:
            with self.store.read() as conn:
                for plant in missing:
                    stored = stored_unbacked(conn, plant)
                    if stored is not None:
                        found[plant] = stored
        return found

    def _committed(self, minted: list[Minted]) -> None:
        for m in minted:
            log.info(
                "minted MWh %d of %s: %d units to %d backers, %d undistributed",
                m.mwh_index,
                m.plant,
                m.units,
                m.backers,
                m.undistributed,
            )
        unbacked: dict[str, list[Minted]] = {}
        for m in minted:
            if m.backed:
                self._unbacked.pop(m.plant, None)
                unbacked.pop(m.plant, None)
            else:
                self._unbacked[m.plant] = Unbacked(m.mwh_index, m.completed_at_us)
                unbacked.setdefault(m.plant, []).append(m)
        for plant, items in unbacked.items():
            first, last = items[0].mwh_index, items[-1].mwh_index
            log.warning(
                "%s minted MWh %s with no backer in force: all their units stay undistributed "
                "for good. Import the share register (heliod backers import) before "
                "accounting; later mints use it",
                plant,
                f"{first}..{last}" if last != first else first,
            )

    def _batch(self, conn: Connection) -> BatchResult:
        now_us = self.clock_us()
        state = repo.load_state(conn)
        state_before = state.to_json()
        ledger = Ledger((b.rules for b in self.books.values()), state)
        rows, caught_up, scanned = repo.energy_readings(
            conn, state.position, self.devices, self.batch_size
        )
        decisions = repo.decisions_after(conn, state.last_decision_id)
        resets = clock_resets_after(conn, state.last_reset_id)
        for plant in self.books:
            self._sync_plant(conn, plant, state)
            if self._log is not None:
                self._log.sync(conn, plant, self._registers[plant], now_us)
        goal_books = {p: g.book(goals_repo.event_ids(conn, p)) for p, g in self.goals.items()}
        self._unsummed.clear()
        result = BatchResult(readings=len(rows), caught_up=caught_up)
        anomalies: list[tuple[str, Anomaly]] = []
        buckets: dict[tuple[str, str, int], int] = {}
        hours: dict[tuple[str, int], int] = {}  # plant, UTC hour: the same energy
        for outcome in ledger.run(rows, decisions, caught_up, scanned, resets):
            if outcome.plant is None:
                continue
            if outcome.anomaly is not None:
                anomalies.append((outcome.plant, outcome.anomaly))
            step = outcome.step
            if step is not None and step.delta_mwh:
                key = (outcome.plant, step.device, step.ts_us - step.ts_us % repo.BUCKET_US)
                buckets[key] = buckets.get(key, 0) + step.delta_mwh
                hour = (outcome.plant, step.ts_us - step.ts_us % repo.HOUR_US)
                hours[hour] = hours.get(hour, 0) + step.delta_mwh
            for due in outcome.mints:
                minted, _in_force, _credits = self._mint(
                    conn,
                    due.plant,
                    due.mwh_index,
                    due.completed_at_us,
                    state_before=state_before,
                    now_us=now_us,
                )
                result.mints.append((due.plant, due.mwh_index))
                result.minted.append(minted)
                book = goal_books.get(due.plant)
                if book is not None:
                    events = book.mint(due.mwh_index, due.completed_at_us)
                    _store_events(conn, events, due.mwh_index, now_us)
        state.position = max(state.position, scanned)
        if caught_up:
            for book in goal_books.values():
                _settle(conn, book, ledger, now_us)
        # Each mint's credits were added to the balances rows by the store; a row of 0 for
        # each backer in force at a mint for the first time that none credited
        # (docs/accounting.md, "Balances"). Where the store could not add exactly, the
        # totals of every backer credited or new in this batch are written instead.
        for plant in result_plants(result):
            changed = self._allocators[plant].take_changed(plant not in self._unsummed)
            credits_repo.set_balances(conn, plant, *changed)
        repo.insert_anomalies(conn, anomalies, now_us)
        repo.add_energy(conn, buckets)
        repo.add_energy_hourly(conn, hours)
        repo.save_state(conn, state, now_us)
        result.anomalies = len(anomalies)
        result.position = state.position
        return result

    def _sync_plant(self, conn: Connection, plant: str, state: LedgerState) -> None:
        """Bring the in-memory register and allocator up to what is committed."""
        register = self._registers.get(plant)
        if register is None:
            register = self._registers[plant] = Register()
        register.extend(repo.share_rows_stream(conn, plant, register.last_id))
        completed = state.plants[plant].mwh_completed if plant in state.plants else 0
        alloc = self._allocators.get(plant)
        units = self.books[plant].units_per_mwh
        if alloc is None or alloc.minted != completed * units:
            self._allocators[plant] = rebuild_allocator(conn, plant, units, register)
            # The first batch since start, or mints committed by another process (or a
            # ledger rebuilt): what the last committed mint found.
            self._remember_backing(conn, plant, register)

    def _remember_backing(self, conn: Connection, plant: str, register: Register) -> None:
        found = _unbacked_with(conn, plant, register)
        if found is None:
            self._unbacked.pop(plant, None)
        else:
            self._unbacked[plant] = found
        self._backing_known.add(plant)

    def _mint(
        self, conn: Connection, plant: str, k: int, t_us: int, *, state_before: str, now_us: int
    ) -> tuple[Minted, InForce, Credits]:
        """One mint: the weights in force (sorted by backer, shared by every mint under the
        same rows) and its credits (units > 0, sorted by backer), both cheap to walk."""
        book = self.books[plant]
        register = self._registers[plant]
        alloc = self._allocators[plant]
        in_force = register.weights_at(t_us, register.last_id)
        alloc.use(in_force)
        credits = alloc.mint()
        record = MintRecord(
            plant, k, t_us, book.units_per_mwh, register.last_id, alloc.undistributed
        )
        log = self._log
        entry, summed = write_credits(conn, log, record, in_force, credits, minted=alloc.minted)
        if not summed:
            self._unsummed.add(plant)
        event = mint_body(
            plant,
            k,
            completed_at=rfc3339(t_us),
            symbol=book.symbol,
            decimals=book.decimals,
            units=book.units_per_mwh,
            credits=credits,
            undistributed=alloc.undistributed,
            log=None if entry is None else entry.push_field(),
        )
        repo.insert_mint(conn, record, event=event, state_before=state_before, now_us=now_us)
        if log is not None and entry is not None:
            log.append(conn, entry, now_us)
        minted = Minted(
            plant, k, t_us, book.units_per_mwh, len(credits), alloc.undistributed, bool(in_force)
        )
        return minted, in_force, credits


def _store_events(
    conn: Connection,
    events: list[GoalEvent],
    after_mint: int,
    now_us: int,
    placement_at: tuple[int, int] | None = None,
) -> None:
    """Store goal events after mint `after_mint`; `placement_at` (position, decision id)
    marks challenges missed by the clock, for replays."""
    for event in events:
        placement = None
        if placement_at is not None and isinstance(event, ChallengeSettled):
            placement = Placement(event.plant, event.challenge.id, *placement_at)
        goals_repo.insert_event(
            conn, event, after_mint=after_mint, now_us=now_us, placement=placement
        )


def _settle(conn: Connection, book: GoalBook, ledger: Ledger, now_us: int) -> None:
    """At the end of a run that reached the newest reading: the events of goals configured
    after their mint, then the challenges whose deadline passed (docs/milestones.md)."""
    state = ledger.state
    done = state.plants[book.plant].mwh_completed
    times = goals_repo.completion_times(conn, book.plant, book.awaiting(done))
    _store_events(conn, book.catch_up(times), done, now_us)
    missed = book.deadline_check(now_us, lambda until: ledger.in_reach(book.plant, until))
    at = (state.position, state.last_decision_id)
    _store_events(conn, missed, done, now_us, placement_at=at)


def result_plants(result: BatchResult) -> list[str]:
    """Plants that minted in a batch, in order of first mint."""
    return list(dict.fromkeys(plant for plant, _ in result.mints))


def _unbacked_with(conn: Connection, plant: str, register: Register) -> Unbacked | None:
    """The plant's latest committed mint, when it found no backer in force in `register`."""
    last = repo.last_mint_record(conn, plant)
    if last is None:
        return None
    in_force = register.weights_at(last.completed_at_us, last.register_pos)
    return None if in_force else Unbacked(last.mwh_index, last.completed_at_us)


def stored_unbacked(conn: Connection, plant: str) -> Unbacked | None:
    """`_unbacked_with` from the stored register rows alone."""
    register = Register()
    register.extend(repo.share_rows_stream(conn, plant))
    return _unbacked_with(conn, plant, register)


def rebuild_allocator(conn: Connection, plant: str, units: int, register: Register) -> Allocator:
    """Recompute exact entitlements from the stored mints; refuse a ledger they don't explain.

    Every backer in force at some mint gets a balances row (0 included) once the caller
    commits; the allocator comes back with nothing marked changed."""
    alloc = Allocator(units)
    records = repo.mint_records(conn, plant)
    i = 0
    while i < len(records):
        in_force = register.weights_at(records[i].completed_at_us, records[i].register_pos)
        j = i + 1
        while (
            j < len(records)
            and register.key_at(records[j].completed_at_us, records[j].register_pos) == in_force.key
        ):
            j += 1
        alloc.use(in_force)
        alloc.advance(j - i)
        i = j
    alloc.changed = bytearray(len(alloc.backers))
    has_row = bytearray(len(alloc.backers))
    mismatch = False
    for backer, stored in repo.balances_stream(conn, plant):
        p = alloc.position(backer)
        if p is None:
            mismatch = mismatch or stored != 0
            continue
        has_row[p] = 1
        mismatch = mismatch or stored != alloc.credited[p]
    if mismatch or any(c and not h for c, h in zip(alloc.credited, has_row, strict=True)):
        raise LedgerMismatch(
            f"{plant}: stored balances differ from what the mints and the share register give; "
            "run `heliod ledger verify` for details"
        )
    # A ledger written before zero balances were kept: give its holders their row.
    missing = [b for b, h in zip(alloc.backers, has_row, strict=True) if not h]
    credits_repo.set_balances(conn, plant, missing, repeat(0, len(missing)))
    return alloc
