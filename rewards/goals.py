"""Milestones and challenges (docs/milestones.md): which mint reaches which goal, and when
one is missed.

A milestone is reached by the mint whose index equals its `mwh`. A challenge is reached
by the mint whose index equals its `goal_mwh` when that mint's completion time is at or
before the deadline; the same mint completed later settles it as missed. A challenge
whose goal no mint reached is missed by the first accounting run after its deadline,
unless readings dated at or before the deadline, still unconfirmed, could complete the
goal once confirmed: it then waits for them, at most `HOLD_MAX_US` (docs/milestones.md).

`GoalBook` holds one plant's goals and which of them already have their event, so each
event is produced once. It has no clock: the accountant passes its time to
`deadline_check`, and a replay passes the stored missed events back with `missed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any

from heliod.rewards.ledger import WH_PER_MWH_IN_MWH as MWH
from heliod.rewards.ledger import LedgerState, Outcome
from heliod.rewards.times import rfc3339

DEFAULT_MILESTONES_MWH = (1, 10, 100, 1000, 10000)
# How long after its deadline a challenge waits for unconfirmed readings that could still
# reach its goal: a device that never reports again must not keep it open for ever.
HOLD_MAX_US = 7 * 24 * 3600 * 1_000_000


def default_title(mwh: int) -> str:
    """ "100 MWh", "1 GWh": a milestone's title when none is configured."""
    return f"{mwh // 1000} GWh" if mwh % 1000 == 0 else f"{mwh} MWh"


def milestone_id(plant: str, mwh: int) -> str:
    """`<plant>:milestone:<mwh>`: the event's id, also the push's Idempotency-Key."""
    return f"{plant}:milestone:{mwh}"


def challenge_id(plant: str, challenge: str) -> str:
    """`<plant>:challenge:<id>`: the event's id, also the push's Idempotency-Key."""
    return f"{plant}:challenge:{challenge}"


@dataclass(frozen=True, slots=True)
class Milestone:
    """Reached by the plant's mint number `mwh`."""

    mwh: int
    title: str


@dataclass(frozen=True, slots=True)
class Challenge:
    """ "If we reach goal_mwh by the deadline, the sponsor does what the title says"."""

    id: str
    title: str
    goal_mwh: int
    deadline_us: int
    sponsor: str


class Status(StrEnum):
    """Where a challenge stands."""

    OPEN = "open"
    REACHED = "reached"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class MilestoneReached:
    """The event of a milestone, reached at its mint's completion time."""

    plant: str
    milestone: Milestone
    reached_at_us: int

    @property
    def id(self) -> str:
        """`<plant>:milestone:<mwh>`, also the push's Idempotency-Key."""
        return milestone_id(self.plant, self.milestone.mwh)

    def body(self) -> dict[str, Any]:
        """The event as pushed and published (docs/milestones.md)."""
        return {
            "event": "milestone",
            "id": self.id,
            "plant": self.plant,
            "mwh": self.milestone.mwh,
            "title": self.milestone.title,
            "reached_at": rfc3339(self.reached_at_us),
        }


@dataclass(frozen=True, slots=True)
class ChallengeSettled:
    """The event of a challenge reached (at the mint's completion time) or missed."""

    plant: str
    challenge: Challenge
    status: Status
    at_us: int  # the reaching mint's completion time, or the deadline

    @property
    def id(self) -> str:
        """`<plant>:challenge:<id>`, also the push's Idempotency-Key."""
        return challenge_id(self.plant, self.challenge.id)

    def body(self) -> dict[str, Any]:
        """The event as pushed and published (docs/milestones.md)."""
        c = self.challenge
        return {
            "event": "challenge",
            "id": self.id,
            "plant": self.plant,
            "challenge": c.id,
            "title": c.title,
            "goal_mwh": c.goal_mwh,
            "deadline": rfc3339(c.deadline_us),
            "sponsor": c.sponsor,
            "status": str(self.status),
            "at": rfc3339(self.at_us),
        }


GoalEvent = MilestoneReached | ChallengeSettled


@dataclass(frozen=True, slots=True)
class PlantGoals:
    """A plant's configured goals; `milestones` None means the default ones."""

    plant: str
    milestones: tuple[Milestone, ...] | None = None
    challenges: tuple[Challenge, ...] = ()

    def book(self, done: Iterable[str] = ()) -> GoalBook:
        """A GoalBook of these goals, `done` naming the events already stored."""
        return GoalBook(self.plant, self.milestones, self.challenges, done)


def progress(mwh_completed: int, goal_mwh: int) -> Fraction:
    """mwh_completed / goal_mwh, at most 1."""
    return min(Fraction(mwh_completed, goal_mwh), Fraction(1))


class GoalBook:
    """One plant's milestones and challenges, and the ids whose event already exists."""

    def __init__(
        self,
        plant: str,
        milestones: Iterable[Milestone] | None = None,
        challenges: Iterable[Challenge] = (),
        done: Iterable[str] = (),
    ) -> None:
        self.plant = plant
        if milestones is None:
            milestones = (Milestone(m, default_title(m)) for m in DEFAULT_MILESTONES_MWH)
        self.milestones = tuple(sorted(milestones, key=lambda m: m.mwh))
        self.challenges = tuple(challenges)
        self.done: set[str] = set(done)  # event ids already produced (stored)

    def _emit(self, event: GoalEvent) -> list[GoalEvent]:
        if event.id in self.done:
            return []
        self.done.add(event.id)
        return [event]

    def _by_mint(self, challenge: Challenge, completed_at_us: int) -> list[GoalEvent]:
        on_time = completed_at_us <= challenge.deadline_us
        return self._emit(
            ChallengeSettled(
                self.plant,
                challenge,
                Status.REACHED if on_time else Status.MISSED,
                completed_at_us if on_time else challenge.deadline_us,
            )
        )

    def mint(self, mwh_index: int, completed_at_us: int) -> list[GoalEvent]:
        """Events caused by the plant's mint number `mwh_index`, in the order to send them."""
        out: list[GoalEvent] = []
        for m in self.milestones:
            if m.mwh == mwh_index:
                out += self._emit(MilestoneReached(self.plant, m, completed_at_us))
        for c in self.challenges:
            if c.goal_mwh == mwh_index:
                out += self._by_mint(c, completed_at_us)
        return out

    def awaiting(self, mwh_completed: int) -> list[int]:
        """Mint numbers up to `mwh_completed` that reach a goal still without its event."""
        milestones = [
            m.mwh
            for m in self.milestones
            if m.mwh <= mwh_completed and milestone_id(self.plant, m.mwh) not in self.done
        ]
        challenges = [
            c.goal_mwh
            for c in self.challenges
            if c.goal_mwh <= mwh_completed and challenge_id(self.plant, c.id) not in self.done
        ]
        return sorted(set(milestones + challenges))

    def catch_up(self, completed_at: Mapping[int, int]) -> list[GoalEvent]:
        """Events of goals configured after their mint (`completed_at`: mwh_index → time µs).

        They carry the mint's own time, so their bodies are those a replay gives.
        """
        out: list[GoalEvent] = []
        for m in self.milestones:
            if m.mwh in completed_at:
                out += self._emit(MilestoneReached(self.plant, m, completed_at[m.mwh]))
        for c in self.challenges:
            if c.goal_mwh in completed_at:
                out += self._by_mint(c, completed_at[c.goal_mwh])
        return out

    def deadline_check(self, now_us: int, in_reach: Callable[[int], int]) -> list[GoalEvent]:
        """Challenges missed at `now_us`: the deadline passed and the goal is out of reach,
        or it was not reached within `HOLD_MAX_US` after the deadline.

        `in_reach(t)` is the most the plant's E (mWh) can become with energy dated at or
        before t (`Ledger.in_reach`): E itself, plus what readings still unconfirmed may
        add. Call it at the end of an accounting run that reached the newest stored reading.
        """
        out: list[GoalEvent] = []
        for c in self.challenges:
            if c.deadline_us >= now_us:
                continue
            held = now_us - c.deadline_us <= HOLD_MAX_US
            if not held or in_reach(c.deadline_us) < c.goal_mwh * MWH:
                out += self.missed(c.id)
        return out

    def missed(self, challenge_id: str) -> list[GoalEvent]:
        """The missed event of a challenge, unless it is already settled (replays use this)."""
        for c in self.challenges:
            if c.id == challenge_id:
                return self._emit(ChallengeSettled(self.plant, c, Status.MISSED, c.deadline_us))
        raise KeyError(challenge_id)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a missed event decided by the clock was committed, for replays.

    It came after every reading up to `position` and every anomaly decision up to
    `decision_id`, and before anything later: a replay puts it back there.
    """

    plant: str
    challenge: str
    position: int
    decision_id: int


def replay_events(
    state: LedgerState,
    outcomes: Iterable[Outcome],
    books: Mapping[str, GoalBook],
    placements: Iterable[Placement],
) -> list[GoalEvent]:
    """The goal events of replayed ledger outcomes, with each stored missed event in place.

    `outcomes` come from `Ledger.run` over `state` (read after each outcome to see where
    the replay stands). Placed events of challenges no longer configured are skipped.
    """
    waiting = sorted(placements, key=lambda p: (p.position, p.decision_id))
    out: list[GoalEvent] = []
    i = 0

    def place(everything: bool) -> None:
        nonlocal i
        while i < len(waiting) and (
            everything
            or state.position > waiting[i].position
            or state.last_decision_id > waiting[i].decision_id
        ):
            p = waiting[i]
            i += 1
            book = books.get(p.plant)
            if book is not None and any(c.id == p.challenge for c in book.challenges):
                out.extend(book.missed(p.challenge))

    for outcome in outcomes:
        place(everything=False)  # those this outcome went past come before its mints
        for due in outcome.mints:
            book = books.get(due.plant)
            if book is not None:
                out.extend(book.mint(due.mwh_index, due.completed_at_us))
    place(everything=True)
    return out
