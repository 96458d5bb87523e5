"""Plays the accountant's part for the goals of docs/milestones.md: batches of stored
readings, then the clock.

A `Timeline` is what the store received, in order: readings (already past the gate)
and anomaly decisions. `run_batches` accounts it in batches cut at the given places,
as the daemon's accounting runs would: each run feeds everything stored so far, gives
every mint to the plant's `GoalBook`, then asks it, with the run's clock, for the
challenges the deadline settled. It records each event with the mint it follows and,
for a missed event decided by the clock, its `Placement`, as the store will.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial

from heliod.rewards.goals import GoalBook, GoalEvent, Placement, replay_events
from heliod.rewards.ledger import Decision, Ledger, PlantRules

Row = tuple[int, str, int, int | None, int | None]  # id, device, ts µs, mWh, range mWh


@dataclass(frozen=True)
class Timeline:
    """Readings and decisions in store order; `times[i]` is when item i was stored (µs)."""

    items: tuple[Row | Decision, ...]
    times: tuple[int, ...]


@dataclass
class Committed:
    """An event as stored: after mint `after_mint` of its plant, placed if clock-decided."""

    event: GoalEvent
    after_mint: int
    placement: Placement | None = None
    run_clock_us: int | None = None  # the clock of the run that decided a missed event


@dataclass
class Books:
    """Everything the runs committed."""

    events: list[Committed] = field(default_factory=list)
    mints: dict[str, dict[int, int]] = field(default_factory=dict)  # plant -> k -> time µs
    ledger: Ledger | None = None


def run_batches(
    plants: Sequence[PlantRules],
    books: Callable[[], dict[str, GoalBook]],
    timeline: Timeline,
    runs: Iterable[tuple[int, int]],
) -> Books:
    """Account `timeline` in runs: (how many items are stored by then, the run's clock µs)."""
    ledger = Ledger(plants)
    goals = books()
    out = Books(ledger=ledger)
    fed = 0  # items already handed to the ledger
    for count, now_us in runs:
        rows = [x for x in timeline.items[fed:count] if not isinstance(x, Decision)]
        decisions = [x for x in timeline.items[:count] if isinstance(x, Decision)]
        fed = max(fed, count)
        for outcome in ledger.run(rows, decisions, caught_up=True):
            for due in outcome.mints:
                out.mints.setdefault(due.plant, {})[due.mwh_index] = due.completed_at_us
                for event in goals[due.plant].mint(due.mwh_index, due.completed_at_us):
                    out.events.append(Committed(event, due.mwh_index))
        for plant, book in goals.items():
            done = ledger.state.plants[plant].mwh_completed
            in_reach = partial(ledger.in_reach, plant)
            for event in book.deadline_check(now_us, in_reach):
                place = Placement(
                    plant,
                    event.challenge.id,  # type: ignore[union-attr]
                    ledger.state.position,
                    ledger.state.last_decision_id,
                )
                out.events.append(Committed(event, done, place, now_us))
    return out


def replay(
    plants: Sequence[PlantRules],
    books: Callable[[], dict[str, GoalBook]],
    timeline: Timeline,
    placements: Iterable[Placement],
) -> list[GoalEvent]:
    """Every event again from scratch in one pass, the stored placements put back."""
    ledger = Ledger(plants)
    rows = [x for x in timeline.items if not isinstance(x, Decision)]
    decisions = [x for x in timeline.items if isinstance(x, Decision)]
    outcomes = ledger.run(rows, decisions, caught_up=True)
    return replay_events(ledger.state, outcomes, books(), placements)


def bodies(events: Iterable[GoalEvent]) -> dict[str, dict[str, object]]:
    """Event id -> body; fails on a duplicate id."""
    out: dict[str, dict[str, object]] = {}
    for event in events:
        assert event.id not in out, f"duplicate event {event.id}"
        out[event.id] = event.body()
    return out
