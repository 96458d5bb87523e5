"""Hypothesis properties of the goals (docs/milestones.md): once each, never missing, whatever the batches.

A drawn plant (one or two energy devices, plausible steps, quarantined jumps, operator
decisions, unchanged readings) is stored in time order, as a gateway with a right clock
stores it, and accounted in randomly cut runs at random clock times between two stored
items. Whatever the cuts, the events are the same, each once, equal to a literal model of
the rules over the final mints, and a replay from scratch gives them again. With a clock that
jumps ahead of what is stored (late readings), the outcome may depend on when runs
happened, but each event is still produced once, none is missing, and the replay with
the stored placements gives the same events.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from math import floor

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from heliod.rewards.energy import AnomalyKind, Bound
from heliod.rewards.goals import (
    HOLD_MAX_US,
    Challenge,
    ChallengeSettled,
    GoalBook,
    GoalEvent,
    Milestone,
    MilestoneReached,
    PlantGoals,
    Status,
    default_title,
)
from heliod.rewards.ledger import Decision, Ledger, PlantRules

from .goals_play import Books, Row, Timeline, bodies, replay, run_batches

S = 1_000_000
H = 3600 * S
MWH = 10**9  # 1 MWh in mWh
T0 = 1_798_761_600 * S  # 2027-01-01T00:00:00Z
STEPS_US = (S, 60 * S, 600 * S, H, 3 * H)
CAPACITY_KW = 10_000  # bound(10 min) = 1.67 MWh, bound(3 h) = 30 MWh: goals come soon
PLANT = PlantRules("p", Bound.of(Decimal(CAPACITY_KW), Decimal(1)), frozenset({"a", "b"}), None)
PROPERTY = settings(
    max_examples=int(os.environ.get("HELIOD_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

read_draw = st.tuples(
    st.just("read"),
    st.sampled_from("ab"),
    st.integers(0, len(STEPS_US) - 1),
    st.integers(0, 1000) | st.integers(900, 1000),
    st.sampled_from(("normal", "normal", "normal", "same", "jump")),
)
decide_draw = st.tuples(st.just("decide"), st.integers(0, 3), st.booleans())
ops = st.tuples(
    read_draw, st.lists(st.one_of(read_draw, read_draw, decide_draw), min_size=6, max_size=40)
).map(lambda first_rest: [first_rest[0], *first_rest[1]])


def bound_mwh(elapsed_us: int) -> Fraction:
    """bound(t) in mWh for the drawn plant (only to size deltas; the ledger has its own)."""
    return Fraction(CAPACITY_KW * 10**6 * max(elapsed_us, 60 * S), 3600 * S)


def build(draws: Sequence[tuple[object, ...]]) -> Timeline:
    """Readings and decisions stored in time order, decisions resolved against open jumps."""
    ledger = Ledger([PLANT])  # only to know which jumps are open when a decision comes
    items: list[Row | Decision] = []
    times: list[int] = []
    t = T0
    value: dict[str, int] = {}
    last_ts: dict[str, int] = {}
    open_jumps: list[tuple[int, str, int, int]] = []  # reading id, device, Δ, reading time
    reading_id = 0
    for draw in draws:
        if draw[0] == "decide":
            _, pick, accept = draw
            if not open_jumps:
                continue
            assert isinstance(pick, int) and isinstance(accept, bool)
            rid, device, delta, at = open_jumps.pop(pick % len(open_jumps))
            t += S
            decision = Decision(
                sum(isinstance(x, Decision) for x in items) + 1,
                "p",
                device,
                rid,
                accept,
                delta,
                t,
                reading_id,
                at,
            )
            ledger.decide(decision)
            items.append(decision)
            times.append(t)
            continue
        _, device, step, frac, kind = draw
        assert isinstance(device, str) and isinstance(step, int) and isinstance(frac, int)
        t += STEPS_US[step]
        bound = bound_mwh(t - last_ts.get(device, t))
        v = value.get(device, 0)
        if kind == "normal":
            v += floor(bound * frac / 1000)
        elif kind == "jump":
            v += floor(bound) + 1 + floor(bound * frac / 1000)
        value[device], last_ts[device] = v, t
        reading_id += 1
        row: Row = (reading_id, device, t, v, None)
        outcome = ledger.feed(*row)
        if outcome.anomaly and outcome.anomaly.kind is AnomalyKind.IMPLAUSIBLE_JUMP:
            a = outcome.anomaly
            assert a.delta_mwh is not None
            open_jumps.append((a.reading_id, a.device, a.delta_mwh, a.reading_at_us))
        items.append(row)
        times.append(t)
    return Timeline(tuple(items), tuple(times))


@st.composite
def goals(draw: st.DrawFn, tl: Timeline) -> PlantGoals:
    """Milestones (None: the defaults) and challenges whose deadlines fall on, just before
    or just after stored items, or anywhere in the span."""
    marks = draw(st.none() | st.sets(st.integers(1, 12), max_size=6))
    milestones = None if marks is None else tuple(Milestone(m, default_title(m)) for m in marks)
    challenges = []
    for n in range(draw(st.integers(0, 3))):
        at = tl.times[draw(st.integers(0, len(tl.times) - 1))]
        deadline = draw(
            st.sampled_from((at - 1, at, at + 1)) | st.integers(T0 - H, tl.times[-1] + 2 * H)
        )
        goal = draw(st.integers(1, 10))
        challenges.append(Challenge(f"c{n}", f"{goal} MWh", goal, deadline, "sponsor"))
    return PlantGoals("p", milestones, tuple(challenges))


@st.composite
def runs_between(draw: st.DrawFn, tl: Timeline) -> list[tuple[int, int]]:
    """Runs after random items, each at a clock time before the next item was stored."""
    n = len(tl.items)
    cuts = sorted(draw(st.sets(st.integers(1, n), max_size=n)))
    runs = []
    for c in cuts:
        nxt = tl.times[c] if c < n else tl.times[-1] + 3 * H
        runs.append(
            (c, tl.times[c - 1] + (nxt - tl.times[c - 1]) * draw(st.integers(0, 1000)) // 1000)
        )
    runs.append((n, tl.times[-1] + 1000 * 24 * H))
    return runs


def model(drawn: PlantGoals, played: Books, now_us: int) -> dict[str, dict[str, object]]:
    """docs/milestones.md read literally over the final mints and the final clock."""
    assert played.ledger is not None
    mints = played.mints.get("p", {})
    book = drawn.book()
    out: list[GoalEvent] = [
        MilestoneReached("p", m, mints[m.mwh]) for m in book.milestones if m.mwh in mints
    ]
    ledger = played.ledger
    for c in drawn.challenges:
        if c.goal_mwh in mints:
            on_time = mints[c.goal_mwh] <= c.deadline_us
            status = Status.REACHED if on_time else Status.MISSED
            out.append(
                ChallengeSettled("p", c, status, mints[c.goal_mwh] if on_time else c.deadline_us)
            )
        elif c.deadline_us < now_us and (
            ledger.in_reach("p", c.deadline_us) < c.goal_mwh * MWH
            or now_us - c.deadline_us > HOLD_MAX_US
        ):
            out.append(ChallengeSettled("p", c, Status.MISSED, c.deadline_us))
    return bodies(out)


def check_order(played: Books) -> None:
    """Each event caused by a mint follows that mint; a clock-decided one follows no goal mint."""
    for c in played.events:
        e = c.event
        if isinstance(e, MilestoneReached):
            assert c.after_mint == e.milestone.mwh
        elif c.placement is None:
            assert c.after_mint == e.challenge.goal_mwh
        else:
            assert c.after_mint < e.challenge.goal_mwh
            assert e.status is Status.MISSED


@PROPERTY
@given(st.data(), ops)
def test_events_are_the_same_once_each_whatever_the_runs(
    data: st.DataObject, draws: list[tuple[object, ...]]
) -> None:
    tl = build(draws)
    drawn = data.draw(goals(tl))

    def books() -> dict[str, GoalBook]:
        return {"p": drawn.book()}

    first = run_batches([PLANT], books, tl, data.draw(runs_between(tl)))
    second = run_batches([PLANT], books, tl, data.draw(runs_between(tl)))
    got = bodies(c.event for c in first.events)
    assert got == bodies(c.event for c in second.events)
    assert got == model(drawn, first, tl.times[-1] + 1000 * 24 * H)
    check_order(first)
    minted = len(first.mints.get("p", {}))
    event("no mint" if not minted else "1 to 9 mints" if minted < 10 else "10 mints or more")
    if any(isinstance(x, Decision) and x.accept for x in tl.items):
        event("a jump accepted")
    for c in first.events:  # what the examples cover (pytest --hypothesis-show-statistics)
        body = c.event.body()
        event(f"{body['event']} {body.get('status', '')} {'by clock' if c.placement else ''}")
    placements = [c.placement for c in first.events if c.placement is not None]
    assert bodies(replay([PLANT], books, tl, placements)) == got


@PROPERTY
@given(st.data(), ops)
def test_a_clock_ahead_of_the_store_still_gives_each_event_once(
    data: st.DataObject, draws: list[tuple[object, ...]]
) -> None:
    tl = build(draws)
    drawn = data.draw(goals(tl))

    def books() -> dict[str, GoalBook]:
        return {"p": drawn.book()}

    n = len(tl.items)
    cuts = sorted(data.draw(st.sets(st.integers(1, n), max_size=n)))
    clock = sorted(
        data.draw(
            st.lists(st.integers(T0, tl.times[-1] + 3 * H), min_size=len(cuts), max_size=len(cuts))
        )
    )
    runs = [*zip(cuts, clock, strict=True), (n, tl.times[-1] + 1000 * 24 * H)]
    played = run_batches([PLANT], books, tl, runs)
    got = bodies(c.event for c in played.events)  # no duplicate
    check_order(played)
    mints = played.mints.get("p", {})
    book = books()["p"]
    # never missing: every reached milestone and every minted goal has its event
    for m in book.milestones:
        assert (f"p:milestone:{m.mwh}" in got) == (m.mwh in mints)
    assert played.ledger is not None
    ledger = played.ledger
    for c in drawn.challenges:
        body = got.get(f"p:challenge:{c.id}")
        out_of_reach = ledger.in_reach("p", c.deadline_us) < c.goal_mwh * MWH or (
            tl.times[-1] + 1000 * 24 * H - c.deadline_us > HOLD_MAX_US
        )
        final_run_due = c.goal_mwh in mints or out_of_reach
        by_clock = any(e.placement and e.event.id == f"p:challenge:{c.id}" for e in played.events)
        assert (body is not None) == (final_run_due or by_clock)
        if body is not None and body["status"] == "reached":
            assert mints[c.goal_mwh] <= c.deadline_us
    for c in played.events:
        if c.placement is not None:
            assert isinstance(c.event, ChallengeSettled)
            assert c.run_clock_us is not None
            assert c.event.challenge.deadline_us < c.run_clock_us
    placements = [c.placement for c in played.events if c.placement is not None]
    assert bodies(replay([PLANT], books, tl, placements)) == got
