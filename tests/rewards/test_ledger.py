"""docs/accounting.md through the Ledger, by hand: one reading late, start, decisions, MWh times."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from heliod.rewards.energy import AnomalyKind, Bound
from heliod.rewards.ledger import Decision, Ledger, LedgerState, MintDue, PlantRules
from heliod.rewards.register import BEGINNING_US

from .accountant import Accountant

S = 1_000_000  # µs per second
H = 3600 * S
MWH = 10**9  # 1 MWh in mWh
# 5000 kW × 1.0: bound(1 h) = 5 MWh; 250 kW × 1.2: bound(60 s) = 5 kWh = 5,000,000 mWh.
BIG = PlantRules("p", Bound.of(Decimal(5000), Decimal(1)), frozenset({"inv1", "inv2"}), None)
SMALL = PlantRules("p", Bound.of(Decimal(250), Decimal("1.2")), frozenset({"inv1"}), None)

Row = tuple[int, str, int, int | None, int | None]


def rows(*readings: tuple[int, int], device: str = "inv1", first_id: int = 1) -> list[Row]:
    """(id, device, ts µs, mWh, range) rows from (ts µs, mWh) pairs."""
    return [(first_id + i, device, t, v, None) for i, (t, v) in enumerate(readings)]


def hourly_mwh(count: int) -> list[Row]:
    """r1 = 0 at 0 h, then +1 MWh per hour, and one unchanged reading to confirm the last.

    r2 makes r1 the baseline; r3 confirms r2 and completes MWh 1 at 1 h; … ; the final
    unchanged reading confirms the reading at `count` h, completing MWh `count` there.
    """
    points = [(n * H, n * MWH) for n in range(count + 1)]
    points.append(((count + 1) * H, count * MWH))
    return rows(*points)


def feed(acc: Accountant, readings: Sequence[Row]) -> list[list[MintDue]]:
    """Feed rows one by one; the MintDue list of each."""
    return [acc.feed(*r).mints for r in readings]


def test_crossing_reading_is_confirmed_only_by_the_next_one() -> None:
    # r1 0 (0 h), r2 999,999,999 (1 h), r3 1,000,000,000 (2 h), r4 1,000,000,001 (3 h).
    # r2 makes r1 the baseline; r3 confirms r2: E = 999,999,999 (no MWh, though r3's
    # value crosses); r4 confirms r3: E = 10^9 → MWh 1, at r3's timestamp 2 h.
    acc = Accountant([(BIG, 10**8)])
    due = feed(acc, rows((0, 0), (H, 999_999_999), (2 * H, MWH), (3 * H, MWH + 1)))
    assert due == [[], [], [], [MintDue("p", 1, 2 * H)]]
    assert acc.energy_mwh("p") == MWH


def test_one_delta_completing_several_mwh_mints_each_at_the_same_time() -> None:
    # r2 (1 h) 0.5 MWh, r3 (2 h) 3.7 MWh: when r4 confirms r3, Δ = 3.2 MWh ≤ bound(1 h)
    # = 5 MWh and E goes 0.5 → 3.7 MWh: MWh 1, 2 and 3 complete at r3's time, 2 h.
    acc = Accountant([(BIG, 10**8)])
    acc.add_row("p", "ann", "1", BEGINNING_US)
    due = feed(acc, rows((0, 0), (H, MWH // 2), (2 * H, 3_700_000_000), (2 * H + S, 3_700_000_000)))
    assert due[3] == [MintDue("p", k, 2 * H) for k in (1, 2, 3)]
    assert acc.ledger.state.plants["p"].mwh_completed == 3
    assert acc.books["p"].credits == {k: {"ann": 10**8} for k in (1, 2, 3)}
    assert acc.verify("p") == []


def test_readings_before_start_are_never_accounted() -> None:
    # start = 100 s. r1 (50 s) and r2 (90 s) are ignored; r3 (100 s, at start) is the
    # first P, r4 makes it the baseline, r5 confirms r4: E = 3,000,000 − 2,000,000.
    rules = PlantRules("p", SMALL.bound, SMALL.energy_devices, 100 * S)
    acc = Accountant([(rules, 1)])
    feed(
        acc,
        rows(
            (50 * S, 0),
            (90 * S, 1_000_000),
            (100 * S, 2_000_000),
            (160 * S, 3_000_000),
            (220 * S, 4_000_000),
        ),
    )
    assert acc.energy_mwh("p") == 1_000_000
    assert acc.anomalies == []


def test_two_devices_add_up_in_the_order_their_readings_are_confirmed() -> None:
    # inv1 and inv2 each gain 0.6 MWh in their first confirmed step; inv2's step is
    # confirmed first (reading 5), so it is inv1's step (confirmed by reading 6, P at
    # 1 h + 1 s) that carries E across 1 MWh: MWh 1 completes at inv1's P time.
    acc = Accountant([(BIG, 1)])
    readings = [
        (1, "inv1", 0, 0, None),
        (2, "inv2", 0, 0, None),
        (3, "inv1", H + S, 600 * 10**6, None),  # inv1 baseline set by this reading
        (4, "inv2", H, 600 * 10**6, None),
        (5, "inv2", H + 2 * S, 600 * 10**6, None),  # confirms inv2's 0.6 MWh: E = 0.6
        (6, "inv1", H + 3 * S, 600 * 10**6, None),  # confirms inv1's 0.6 MWh: E = 1.2
    ]
    due = feed(acc, readings)
    assert due[4] == []
    assert due[5] == [MintDue("p", 1, H + S)]
    assert acc.energy_mwh("p") == 1_200_000_000


JUMP = rows(
    (0, 10_000_000),
    (60 * S, 12_000_000),
    (120 * S, 1_009_000_000),  # +997,000,000 in 60 s: far above 5,000,000
    (180 * S, 1_011_000_000),
    (240 * S, 1_013_000_000),
)


def jump_decision(accept: bool, position: int, at_s: int) -> Decision:
    """The operator's answer on reading 3's implausible_jump (Δ = 997,000,000 mWh)."""
    return Decision(1, "p", "inv1", 3, accept, 997_000_000, at_s * S, position)


def test_implausible_jump_is_quarantined_and_never_credited_by_itself() -> None:
    # r3 confirms r2 (+2,000,000); r4 confirms r3: Δ = 997,000,000 > bound(60 s) →
    # implausible_jump (previous 12,000,000); r5 confirms r4 (+2,000,000): E = 4,000,000.
    acc = Accountant([(SMALL, 1)])
    feed(acc, JUMP)
    [a] = acc.anomalies
    assert (a.kind, a.reading_id, a.previous_mwh, a.delta_mwh, a.credited_mwh) == (
        AnomalyKind.IMPLAUSIBLE_JUMP,
        3,
        12_000_000,
        997_000_000,
        0,
    )
    assert acc.energy_mwh("p") == 4_000_000


def test_accepted_jump_completes_its_mwh_at_the_decision_time() -> None:
    # Decided at 250 s after reading 5 (position 5): E = 4,000,000 + 997,000,000 =
    # 1,001,000,000 → MWh 1 completes at the decision's time, 250 s.
    ledger = Ledger([SMALL])
    outcomes = list(ledger.run(JUMP, [jump_decision(True, 5, 250)], caught_up=True))
    assert [m for o in outcomes for m in o.mints] == [MintDue("p", 1, 250 * S)]
    assert ledger.state.plants["p"].e_mwh == 1_001_000_000


def test_decision_enters_right_after_the_deltas_up_to_its_position() -> None:
    # Decided at 200 s with position 4: the jump enters after r4's (empty) step and
    # before r5's: E = 2,000,000 + 997,000,000 = 999,000,000, then r5 confirms r4
    # (+2,000,000) and carries E across 10^9: MWh 1 at r4's timestamp, 180 s.
    ledger = Ledger([SMALL])
    outcomes = list(ledger.run(JUMP, [jump_decision(True, 4, 200)], caught_up=True))
    assert [m for o in outcomes for m in o.mints] == [MintDue("p", 1, 180 * S)]


def test_rejected_jump_is_dropped() -> None:
    ledger = Ledger([SMALL])
    outcomes = list(ledger.run(JUMP, [jump_decision(False, 5, 250)], caught_up=True))
    assert [m for o in outcomes for m in o.mints] == []
    assert ledger.state.plants["p"].e_mwh == 4_000_000
    assert ledger.state.last_decision_id == 1


def test_decision_waits_for_the_batch_that_feeds_its_position() -> None:
    # Batch 1 feeds r1..r4 without being caught up: the decision at position 5 waits;
    # batch 2 (after a restart through JSON) feeds r5 and then applies it: MWh 1 at 250 s.
    first = Ledger([SMALL])
    decision = jump_decision(True, 5, 250)
    assert [o.mints for o in first.run(JUMP[:4], [decision], caught_up=False)] == [[]] * 4
    assert first.state.last_decision_id == 0
    second = Ledger([SMALL], LedgerState.from_json(first.state.to_json()))
    mints = [m for o in second.run(JUMP[4:], [decision], caught_up=True) for m in o.mints]
    assert mints == [MintDue("p", 1, 250 * S)]


def test_caught_up_batch_never_applies_a_decision_beyond_the_readings_it_fed() -> None:
    # docs/accounting.md: the accepted Δ enters "right after every delta confirmed by a reading at or
    # before that position (so a replay puts it in the same place)". If the store hands
    # the ledger a decision at position 5 with a batch that stops at r4 (a decision
    # committed between reading the readings and reading the decisions), applying it at
    # the end of that batch would put it before r5's delta: MWh 1 at 180 s instead of the
    # 250 s a replay from scratch gives.
    ledger = Ledger([SMALL])
    decision = jump_decision(True, 5, 250)
    list(ledger.run(JUMP[:4], [decision], caught_up=True))
    mints = [m for o in ledger.run(JUMP[4:], [decision], caught_up=True) for m in o.mints]
    assert mints == [MintDue("p", 1, 250 * S)]


def test_scanned_position_lets_a_decision_past_unfed_readings_apply() -> None:
    # Readings 6 and 7 belong to no energy device and are not fed; the batch says it
    # scanned up to 6. The decision at position 6 applies at the end (MWh 1 at 250 s,
    # as above); one at position 7 waits for a batch that reaches reading 7.
    ledger = Ledger([SMALL])
    at_6 = jump_decision(True, 6, 250)
    mints = [m for o in ledger.run(JUMP, [at_6], caught_up=True, scanned=6) for m in o.mints]
    assert mints == [MintDue("p", 1, 250 * S)]
    later = Ledger([SMALL])
    at_7 = jump_decision(True, 7, 250)
    assert [o.mints for o in later.run(JUMP, [at_7], caught_up=True, scanned=6)] == [[]] * 5
    assert later.state.last_decision_id == 0


def test_backer_joining_after_mwh_2_through_the_ledger() -> None:
    # MWh k completes at k hours (see hourly_mwh); U = 7; ann 1 and bob 2 from the
    # beginning, cy 4 from 2.5 h (after mint 2's completion time, before mint 3's).
    # By hand (A = exact entitlement, floors credited):
    #   mint 1: ann 7/3 → 2, bob 14/3 → 4, undistributed 1
    #   mint 2: ann 14/3 → 4 (+2), bob 28/3 → 9 (+5), undistributed 1
    #   mint 3: W = 7: ann 17/3 → 5 (+1), bob 34/3 → 11 (+2), cy 4 (+4), undistributed 1
    #   mint 4: ann 20/3 → 6 (+1), bob 40/3 → 13 (+2), cy 8 (+4), undistributed 1
    acc = Accountant([(BIG, 7)])
    acc.add_row("p", "ann", "1", BEGINNING_US)
    acc.add_row("p", "bob", "2", BEGINNING_US)
    acc.add_row("p", "cy", "4", 2 * H + H // 2)
    feed(acc, hourly_mwh(4))
    books = acc.books["p"]
    assert [m.completed_at_us for m in books.mints] == [H, 2 * H, 3 * H, 4 * H]
    assert books.credits == {
        1: {"ann": 2, "bob": 4},
        2: {"ann": 2, "bob": 5},
        3: {"ann": 1, "bob": 2, "cy": 4},
        4: {"ann": 1, "bob": 2, "cy": 4},
    }
    assert [m.undistributed_after for m in books.mints] == [1, 1, 1, 1]
    assert acc.verify("p") == []


def test_late_share_row_leaves_earlier_mints_alone_and_applies_to_later_ones() -> None:
    # U = 10, ann alone: mint 1 (1 h) → ann 10. Then bob's row arrives, valid from the
    # beginning (before mint 1's time): mint 1 stays as it was; mint 2 (2 h) → 5 / 5.
    acc = Accountant([(BIG, 10)])
    acc.add_row("p", "ann", "1", BEGINNING_US)
    readings = hourly_mwh(2)
    feed(acc, readings[:3])
    acc.add_row("p", "bob", "1", BEGINNING_US)
    feed(acc, readings[3:])
    books = acc.books["p"]
    assert books.credits == {1: {"ann": 10}, 2: {"ann": 5, "bob": 5}}
    assert [m.register_pos for m in books.mints] == [1, 2]
    assert books.balances() == {"ann": 15, "bob": 5}
    assert acc.verify("p") == []


def test_state_round_trips_through_json_mid_stream() -> None:
    # Stop after r3 (P = r3 pending, F = r2), restart from JSON, finish: same as one pass.
    readings = rows((0, 0), (H, 999_999_999), (2 * H, MWH), (3 * H, MWH + 1))
    one = Ledger([BIG])
    whole = [o.mints for o in one.run(readings, [], caught_up=True)]
    first = Ledger([BIG])
    part = [o.mints for o in first.run(readings[:3], [], caught_up=True)]
    text = first.state.to_json()
    second = Ledger([BIG], LedgerState.from_json(text))
    part += [o.mints for o in second.run(readings[3:], [], caught_up=True)]
    assert part == whole
    assert second.state.to_json() == one.state.to_json()
    assert LedgerState.from_json(text).to_json() == text


def test_readings_of_other_devices_only_move_the_position() -> None:
    acc = Accountant([(SMALL, 1)])
    assert acc.feed(1, "meter9", 0, 5_000_000).mints == []
    assert acc.feed(2, "inv1", 0, None).step is None  # no energy_wh field
    assert acc.ledger.state.position == 2
    assert acc.ledger.state.devices == {}


def test_readings_must_come_in_store_order_and_decisions_once() -> None:
    ledger = Ledger([SMALL])
    ledger.feed(5, "inv1", 0, 0)
    with pytest.raises(ValueError):
        ledger.feed(5, "inv1", S, 1)
    ledger.decide(jump_decision(False, 5, 1))
    with pytest.raises(ValueError):
        ledger.decide(jump_decision(False, 5, 1))
