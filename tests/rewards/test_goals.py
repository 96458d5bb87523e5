"""Milestones and challenges (docs/milestones.md) by hand: deadlines to the second, jumps, replays."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from heliod.rewards.energy import Bound
from heliod.rewards.goals import (
    HOLD_MAX_US,
    Challenge,
    ChallengeSettled,
    GoalBook,
    Milestone,
    MilestoneReached,
    Placement,
    Status,
    default_title,
    progress,
)
from heliod.rewards.ledger import Decision, PlantRules

from .goals_play import Timeline, bodies, replay, run_batches

S = 1_000_000
H = 3600 * S
MWH = 10**9  # 1 MWh in mWh
T0 = 1_798_761_600 * S  # 2027-01-01T00:00:00Z
# 5000 kW × 1.0: bound(1 h) = 5 MWh, so 1 MWh an hour is always plausible.
PLANT = PlantRules("p", Bound.of(Decimal(5000), Decimal(1)), frozenset({"inv1"}), None)


def timeline(*points: tuple[int, int] | Decision) -> Timeline:
    """Readings of inv1 from (ts µs, mWh) pairs, stored at their own time, and decisions."""
    items: list[tuple[int, str, int, int | None, int | None] | Decision] = []
    times: list[int] = []
    next_id = 1
    for p in points:
        if isinstance(p, Decision):
            items.append(p)
            times.append(p.decided_at_us)
        else:
            items.append((next_id, "inv1", p[0], p[1], None))
            times.append(p[0])
            next_id += 1
    return Timeline(tuple(items), tuple(times))


def books(
    milestones: tuple[Milestone, ...] | None = (), *challenges: Challenge
) -> dict[str, GoalBook]:
    """One GoalBook for plant p."""
    return {"p": GoalBook("p", milestones, challenges)}


def test_event_bodies_are_those_of_the_contract() -> None:
    c = Challenge("trees-2027", "1 GWh: 100 trees", 1000, T0 - S, "Ville de Brassemonte")
    m = MilestoneReached("p", Milestone(100, "100 MWh"), T0 + 500_000)
    assert m.body() == {
        "event": "milestone",
        "id": "p:milestone:100",
        "plant": "p",
        "mwh": 100,
        "title": "100 MWh",
        "reached_at": "2027-01-01T00:00:00.5Z",
    }
    assert ChallengeSettled("p", c, Status.MISSED, c.deadline_us).body() == {
        "event": "challenge",
        "id": "p:challenge:trees-2027",
        "plant": "p",
        "challenge": "trees-2027",
        "title": "1 GWh: 100 trees",
        "goal_mwh": 1000,
        "deadline": "2026-12-31T23:59:59Z",
        "sponsor": "Ville de Brassemonte",
        "status": "missed",
        "at": "2026-12-31T23:59:59Z",
    }


def test_default_milestones_are_1_10_100_1000_10000_mwh() -> None:
    book = GoalBook("p")
    assert [(m.mwh, m.title) for m in book.milestones] == [
        (1, "1 MWh"),
        (10, "10 MWh"),
        (100, "100 MWh"),
        (1000, "1 GWh"),
        (10000, "10 GWh"),
    ]
    assert default_title(2500) == "2500 MWh"
    assert [e.id for e in book.mint(10, T0)] == ["p:milestone:10"]
    assert book.mint(10, T0) == []  # once
    assert book.mint(11, T0) == []


def test_progress_is_completed_over_goal_at_most_one() -> None:
    assert progress(0, 3) == 0
    assert progress(2, 3) == Fraction(2, 3)
    assert progress(7, 3) == 1


# The deadline is 10 h after T0. MWh 1 completes at 1 h (r2), MWh 2 at r3's time.
DEADLINE = T0 + 10 * H
GOAL_2 = Challenge("two", "2 MWh by 10 h", 2, DEADLINE, "Sponsor")


def test_challenge_reached_on_the_deadlines_second() -> None:
    # r3 (at the deadline's very second) carries E to 2 MWh; r4 confirms it 10 s later.
    # A run at deadline + 5 s must not miss the challenge: r3 is still unconfirmed and
    # dated at the deadline, so it may (and does) complete the goal in time.
    tl = timeline((T0, 0), (T0 + H, MWH), (DEADLINE, 2 * MWH), (DEADLINE + 10 * S, 2 * MWH))
    runs = [(3, DEADLINE + 5 * S), (4, DEADLINE + 15 * S)]
    got = run_batches([PLANT], lambda: books(None, GOAL_2), tl, runs)
    assert [(c.event.id, c.after_mint) for c in got.events] == [
        ("p:milestone:1", 1),
        ("p:challenge:two", 2),
    ]
    assert got.events[1].event.body()["status"] == "reached"
    assert got.events[1].event.body()["at"] == "2027-01-01T10:00:00Z"
    assert got.events[1].placement is None


@pytest.mark.parametrize(
    "split", [[(3, DEADLINE + 5 * S), (4, DEADLINE + 15 * S)], [(4, DEADLINE + H)]]
)
def test_challenge_missed_by_one_second(split: list[tuple[int, int]]) -> None:
    # The same with r3 one second after the deadline: MWh 2 completes at deadline + 1 s.
    # A run between r3 and r4 misses it by the clock (r3 is after the deadline); a single
    # run misses it by the mint. Either way once, at the deadline.
    late = DEADLINE + S
    tl = timeline((T0, 0), (T0 + H, MWH), (late, 2 * MWH), (late + 10 * S, 2 * MWH))
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, split)
    assert len(got.events) == 1
    assert got.events[0].event.body()["status"] == "missed"
    assert got.events[0].event.body()["at"] == "2027-01-01T10:00:00Z"
    assert got.mints["p"][2] == late


def test_challenge_missed_by_one_mwh() -> None:
    # Goal 3 MWh by 10 h; E is 2 MWh at the deadline (r3 at 2 h, confirmed by r4), and
    # r4, one minute after the deadline, brings the third MWh: too late.
    # Run 1 (deadline + 30 s, r1-r3 stored): r3 at 2 h is unconfirmed, but it can bring E
    # to 2 MWh at most: the goal is out of reach, missed.
    # Run 2 (r4 stored): MWh 2 at 2 h. Run 3 (r5 confirms r4): MWh 3 at deadline + 60 s;
    # no second event.
    goal = Challenge("three", "3 MWh by 10 h", 3, DEADLINE, "Sponsor")
    tl = timeline(
        (T0, 0),
        (T0 + H, MWH),
        (T0 + 2 * H, 2 * MWH),
        (DEADLINE + 60 * S, 3 * MWH),
        (DEADLINE + 120 * S, 3 * MWH),
    )
    runs = [(3, DEADLINE + 30 * S), (4, DEADLINE + 90 * S), (5, DEADLINE + 150 * S)]
    got = run_batches([PLANT], lambda: books(None, goal), tl, runs)
    assert [(c.event.id, c.after_mint) for c in got.events] == [
        ("p:milestone:1", 1),
        ("p:challenge:three", 1),
    ]
    missed = got.events[1]
    assert missed.event.body()["status"] == "missed"
    assert missed.event.body()["at"] == "2027-01-01T10:00:00Z"
    assert missed.placement is not None
    assert (missed.placement.position, missed.placement.decision_id) == (3, 0)
    assert got.mints["p"] == {1: T0 + H, 2: T0 + 2 * H, 3: DEADLINE + 60 * S}
    # A replay from scratch puts the missed event back where it was decided.
    again = replay([PLANT], lambda: books(None, goal), tl, [missed.placement])
    assert bodies(again) == bodies(c.event for c in got.events)


def test_milestones_crossed_by_one_accepted_jump_of_several_mwh() -> None:
    # r2 (1 h) 0.5 MWh; r3 (2 h) 7 MWh: Δ 6.5 MWh > bound(1 h) = 5 MWh, quarantined when
    # r4 confirms r3. Accepted at 4 h: E 0.5 → 7 MWh, mints 1..7 all completed at 4 h.
    # Milestones 1, 2 and 5 follow their own mints; 10 is not reached; the challenge
    # (7 MWh by 5 h) is reached by mint 7 at 4 h.
    decision = Decision(1, "p", "inv1", 3, True, 6_500_000_000, T0 + 4 * H, 4, T0 + 2 * H)
    tl = timeline(
        (T0, 0), (T0 + H, MWH // 2), (T0 + 2 * H, 7 * MWH), (T0 + 3 * H, 7 * MWH), decision
    )
    milestones = tuple(Milestone(m, default_title(m)) for m in (1, 2, 5, 10))
    goal = Challenge("seven", "7 MWh by 5 h", 7, T0 + 5 * H, "Sponsor")
    runs = [(4, T0 + 3 * H + S), (5, T0 + 4 * H + S)]
    got = run_batches([PLANT], lambda: books(milestones, goal), tl, runs)
    assert [(c.event.id, c.after_mint) for c in got.events] == [
        ("p:milestone:1", 1),
        ("p:milestone:2", 2),
        ("p:milestone:5", 5),
        ("p:challenge:seven", 7),
    ]
    assert {c.event.body().get("reached_at", c.event.body().get("at")) for c in got.events} == {
        "2027-01-01T04:00:00Z"
    }
    assert replay([PLANT], lambda: books(milestones, goal), tl, []) == [c.event for c in got.events]


def test_an_unconfirmed_reading_that_could_reach_the_goal_holds_the_deadline() -> None:
    # r3 (2 h, counter at 2 MWh) may complete the goal at 2 h once confirmed: the run an
    # hour after the deadline waits, and r4, hours later (a sleeping inverter), confirms
    # it: reached at 2 h.
    tl = timeline((T0, 0), (T0 + H, MWH), (T0 + 2 * H, 2 * MWH), (DEADLINE + 8 * H, 2 * MWH))
    runs = [(3, DEADLINE + H), (4, DEADLINE + 9 * H)]
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, runs[:1])
    assert got.events == []
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, runs)
    assert [(c.event.body()["status"], c.event.body()["at"], c.placement) for c in got.events] == [
        ("reached", "2027-01-01T02:00:00Z", None)
    ]


def test_a_held_challenge_is_missed_when_the_reading_turns_out_an_outlier() -> None:
    # r3 could reach the goal, but r4 (1.5 MWh, below r3, above F) drops it as an outlier:
    # the goal is out of reach, missed by the run that saw r4.
    tl = timeline((T0, 0), (T0 + H, MWH), (T0 + 2 * H, 2 * MWH), (DEADLINE + 8 * H, MWH * 3 // 2))
    got = run_batches(
        [PLANT], lambda: books((), GOAL_2), tl, [(3, DEADLINE + H), (4, DEADLINE + 9 * H)]
    )
    assert [(c.event.body()["status"], c.placement) for c in got.events] == [
        ("missed", Placement("p", "two", 4, 0))
    ]


@pytest.mark.parametrize(
    ("late", "held"),
    [
        pytest.param(HOLD_MAX_US, True, id="7 days after the deadline: still held"),
        pytest.param(HOLD_MAX_US + 1, False, id="a microsecond more: missed"),
    ],
)
def test_a_held_challenge_waits_at_most_seven_days(late: int, held: bool) -> None:
    # r3 could reach the goal, but its device never reports again (a dead inverter): the
    # challenge does not stay open for ever.
    tl = timeline((T0, 0), (T0 + H, MWH), (T0 + 2 * H, 2 * MWH))
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, [(3, DEADLINE + late)])
    assert [c.placement for c in got.events] == ([] if held else [Placement("p", "two", 3, 0)])


@pytest.mark.parametrize(
    ("pending", "held"),
    [
        pytest.param(2 * MWH, True, id="reaching the goal exactly"),
        pytest.param(2 * MWH - 1, False, id="one mWh short"),
        pytest.param(MWH * 3 // 2, False, id="half a MWh short"),
    ],
)
def test_an_unconfirmed_reading_holds_the_deadline_only_if_it_could_reach_the_goal(
    pending: int, held: bool
) -> None:
    tl = timeline((T0, 0), (T0 + H, MWH), (T0 + 2 * H, pending))
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, [(3, DEADLINE + H)])
    assert [c.placement for c in got.events] == ([] if held else [Placement("p", "two", 3, 0)])


def test_an_implausible_unconfirmed_reading_does_not_hold_the_deadline() -> None:
    # r3 adds 1 MWh in one minute, far above bound(60 s) = 83.3 kWh: once confirmed it is
    # quarantined, and an operator's acceptance would be dated when decided, after the
    # deadline. It cannot reach the goal in time: missed at once.
    tl = timeline((T0, 0), (T0 + H, MWH), (T0 + H + 60 * S, 2 * MWH))
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, [(3, DEADLINE + S)])
    assert [(c.event.body()["status"], c.placement) for c in got.events] == [
        ("missed", Placement("p", "two", 3, 0))
    ]


def test_a_counter_going_back_holds_the_deadline_up_to_the_bound() -> None:
    # r4 reads below F (r3, 1 MWh): a rollover or a restarted counter may add up to
    # bound(1 h) = 5 MWh, enough for the goal: the challenge waits. r5 confirms a restart
    # from zero that adds 0.2 MWh only: missed by that run.
    tl = timeline(
        (T0, 0),
        (T0 + H, MWH),
        (T0 + 2 * H, MWH),
        (T0 + 3 * H, MWH // 5),
        (DEADLINE + H, MWH // 5),
    )
    got = run_batches(
        [PLANT], lambda: books((), GOAL_2), tl, [(4, DEADLINE + S), (5, DEADLINE + 2 * H)]
    )
    assert [(c.event.body()["status"], c.placement) for c in got.events] == [
        ("missed", Placement("p", "two", 5, 0))
    ]


@pytest.mark.parametrize(
    ("at", "held"),
    [pytest.param(DEADLINE, True, id="at D"), pytest.param(DEADLINE + 1, False, id="D + 1 µs")],
)
def test_only_a_reading_dated_at_or_before_the_deadline_holds_it(at: int, held: bool) -> None:
    tl = timeline((T0, 0), (T0 + H, MWH), (at, 2 * MWH))
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, [(3, DEADLINE + H)])
    assert [c.event.body()["status"] for c in got.events] == ([] if held else ["missed"])


def test_a_mint_one_microsecond_after_the_deadline_misses_it() -> None:
    tl = timeline((T0, 0), (T0 + H, MWH), (DEADLINE + 1, 2 * MWH), (DEADLINE + H, 2 * MWH))
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, [(4, DEADLINE + 2 * H)])
    assert [(c.event.body()["status"], c.event.body()["at"]) for c in got.events] == [
        ("missed", "2027-01-01T10:00:00Z")
    ]
    assert got.mints["p"][2] == DEADLINE + 1


def test_a_reading_without_baseline_does_not_hold_the_deadline() -> None:
    # The only reading before the deadline is the device's first: it can only become the
    # baseline, so the run after the deadline misses the challenge at once.
    tl = timeline((DEADLINE - H, 0))
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, [(1, DEADLINE + S)])
    assert [c.event.body()["status"] for c in got.events] == ["missed"]


def test_no_missed_event_before_or_at_the_deadline() -> None:
    tl = timeline((T0, 0))
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, [(1, DEADLINE)])
    assert got.events == []  # at the deadline's second it is still open
    got = run_batches([PLANT], lambda: books((), GOAL_2), tl, [(1, DEADLINE + 1)])
    assert [c.event.body()["status"] for c in got.events] == ["missed"]


def test_goals_configured_after_their_mint_catch_up_with_the_mints_times() -> None:
    book = GoalBook(
        "p",
        (Milestone(1, "first"), Milestone(3, "third")),
        (
            Challenge("a", "a", 2, T0 + H, "s"),  # mint 2 at 1 h: reached
            Challenge("b", "b", 3, T0 + H, "s"),  # mint 3 at 2 h: missed
            Challenge("c", "c", 9, T0 + H, "s"),  # no mint 9: left to the deadline check
        ),
        done={"p:milestone:1"},
    )
    assert book.awaiting(3) == [2, 3]  # mint numbers whose completion times are needed
    got = book.catch_up({1: T0, 2: T0 + H, 3: T0 + 2 * H})
    assert [
        (e.id, e.body().get("status"), e.body().get("reached_at", e.body().get("at"))) for e in got
    ] == [
        ("p:milestone:3", None, "2027-01-01T02:00:00Z"),
        ("p:challenge:a", "reached", "2027-01-01T01:00:00Z"),
        ("p:challenge:b", "missed", "2027-01-01T01:00:00Z"),
    ]
    assert book.catch_up({1: T0, 2: T0 + H, 3: T0 + 2 * H}) == []
    assert book.awaiting(3) == []
    assert [e.id for e in book.deadline_check(T0 + 3 * H, lambda _t: 3 * MWH)] == ["p:challenge:c"]
    assert book.deadline_check(T0 + 3 * H, lambda _t: 3 * MWH) == []


def test_readings_stored_after_a_missed_challenge_do_not_reopen_it_nor_its_replay() -> None:
    # The run after the deadline saw only inv1's first reading (no baseline yet): missed.
    # Readings dated long before the deadline arrive afterwards (a backfill) and complete
    # MWh 2 at 2 h: the challenge stays missed, and a replay that puts the missed event
    # back after reading 1 says so too (placed at the end, it would say "reached").
    tl = timeline((T0, 0), (T0 + H, MWH), (T0 + 2 * H, 2 * MWH), (T0 + 3 * H, 2 * MWH))
    got = run_batches(
        [PLANT], lambda: books((), GOAL_2), tl, [(1, DEADLINE + S), (4, DEADLINE + H)]
    )
    assert got.mints["p"] == {1: T0 + H, 2: T0 + 2 * H}
    assert [(c.event.body()["status"], c.placement) for c in got.events] == [
        ("missed", Placement("p", "two", 1, 0))
    ]
    again = replay([PLANT], lambda: books((), GOAL_2), tl, [Placement("p", "two", 1, 0)])
    assert bodies(again) == bodies(c.event for c in got.events)
