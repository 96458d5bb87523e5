"""docs/accounting.md "Clocks", by hand: a gateway clock ten years ahead, then a reset decision.

The field story: readings stamped by a clock ten years ahead are stored; once the clock
is right, the device's readings are "not after the last reading" and rejected (the
gate, rewards/ingest.py); a reset decision lets them in again, and the step from F
(old clock) to the first confirmed reading after the reset (new clock) is judged from
the device's newest rejected reading, which the operator was shown.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from heliod.rewards.clocks import ClockReset, Seen, is_ahead
from heliod.rewards.energy import AnomalyKind, Bound
from heliod.rewards.ingest import Rejection, check
from heliod.rewards.ledger import Decision, Ledger, LedgerState, MintDue, PlantRules
from heliod.rewards.register import BEGINNING_US

from .accountant import Accountant

S = 1_000_000
H = 3600 * S
MWH = 10**9  # mWh
WH = 1000  # mWh
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z: the right clock
AHEAD = T0 + 3650 * 24 * H  # the same moment on the clock ten years ahead
# 250 kW × 1.2: bound(t) = 300 kW × max(t, 60 s) = 5,000 Wh per minute.
SMALL = PlantRules("p", Bound.of(Decimal(250), Decimal("1.2")), frozenset({"m1"}), None)
# 5000 kW × 1: bound(1 h) = 5 MWh.
BIG = PlantRules("p", Bound.of(Decimal(5000), Decimal(1)), frozenset({"m1"}), None)


def test_a_device_is_in_state_clock_when_its_newest_reading_is_over_5_minutes_ahead() -> None:
    assert not is_ahead(None, T0)
    assert not is_ahead(T0 + 300 * S, T0)  # exactly 5 minutes: the gate keeps such readings
    assert is_ahead(T0 + 300 * S + 1, T0)
    assert is_ahead(AHEAD, T0)
    assert not is_ahead(T0 - 3650 * 24 * H, T0)  # behind is not "clock": readings go on


def test_the_gate_rejects_the_right_clock_until_the_reset() -> None:
    # The last kept energy reading is from 2036; a reading at the right time is rejected.
    fields = {"energy_wh": Decimal("1050000")}
    assert check(T0 + H, fields, AHEAD + 120 * S, T0 + H).rejection is Rejection.NOT_AFTER_LAST
    # After the reset the store compares with readings stored after it only: none yet.
    assert check(T0 + H, fields, None, T0 + H).kept


def field_story(seen: Seen | None) -> tuple[Accountant, list[list[MintDue]]]:
    """r1..r3 on the clock ten years ahead; the reset at T0 + 3700 s; r4, r5 on the right one.

    | id | time          | counter (Wh) |                                                 |
    | r1 | AHEAD         | 1,000,000    | P                                               |
    | r2 | AHEAD + 60 s  | 1,001,000    | r1 is the baseline                              |
    | r3 | AHEAD + 120 s | 1,002,000    | confirms r2: +1,000 Wh                          |
    |    | T0 + 3600 s   | 1,050,000    | rejected: not after r3                          |
    |    | T0 + 3660 s   | 1,051,000    | rejected: the newest rejected reading ("seen")  |
    |    | T0 + 3700 s   |              | clock reset, position 3                         |
    | r4 | T0 + 3720 s   | 1,052,000    | confirms r3 (old clock): +1,000 Wh              |
    | r5 | T0 + 3780 s   | 1,053,000    | confirms r4: the step r3 → r4 crosses the reset |
    """
    acc = Accountant([(SMALL, 1)])
    first = [
        (1, "m1", AHEAD, 1_000_000 * WH, None),
        (2, "m1", AHEAD + 60 * S, 1_001_000 * WH, None),
        (3, "m1", AHEAD + 120 * S, 1_002_000 * WH, None),
    ]
    due = [acc.feed(*r).mints for r in first]
    acc.ledger.reset_clock(ClockReset(1, "m1", 3, T0 + 3700 * S, seen))
    due.append(acc.feed(4, "m1", T0 + 3720 * S, 1_052_000 * WH).mints)
    assert acc.energy_mwh("p") == 2000 * WH  # r2 → r3 judged on the old clock alone
    due.append(acc.feed(5, "m1", T0 + 3780 * S, 1_053_000 * WH).mints)
    return acc, due


def test_the_energy_carried_while_readings_were_rejected_is_credited() -> None:
    # The step r3 → r4 carries 50,000 Wh: 49,000 Wh up to the seen reading (the counter
    # the operator was shown) and 1,000 Wh in the 60 s since it, within 5,000 Wh.
    acc, _ = field_story(Seen(1_051_000 * WH, T0 + 3660 * S))
    assert acc.energy_mwh("p") == 52_000 * WH
    assert acc.anomalies == []
    assert acc.ledger.state.devices["m1"].reset is None  # crossed: forgotten


def test_without_a_rejected_reading_the_step_is_measured_from_f_at_the_decision() -> None:
    # Nothing was shown: r4 − F = 50,000 Wh in the 20 s since the decision is above
    # bound(60 s) = 5,000 Wh, so the step waits in quarantine for `anomalies accept`.
    acc, _ = field_story(None)
    assert acc.energy_mwh("p") == 2000 * WH
    [jump] = acc.anomalies
    assert (jump.kind, jump.reading_id, jump.delta_mwh) == (
        AnomalyKind.IMPLAUSIBLE_JUMP,
        4,
        50_000 * WH,
    )


def test_without_the_reset_the_same_step_would_be_quarantined() -> None:
    # The same readings, had the gate let them in without a decision: across two
    # clocks the elapsed time is negative, so bound(60 s) = 5,000 Wh applies.
    acc = Accountant([(SMALL, 1)])
    for r in (
        (1, "m1", AHEAD, 1_000_000 * WH, None),
        (2, "m1", AHEAD + 60 * S, 1_001_000 * WH, None),
        (3, "m1", AHEAD + 120 * S, 1_002_000 * WH, None),
        (4, "m1", T0 + 3720 * S, 1_052_000 * WH, None),
        (5, "m1", T0 + 3780 * S, 1_053_000 * WH, None),
    ):
        acc.feed(*r)
    assert acc.energy_mwh("p") == 2000 * WH
    assert [a.kind for a in acc.anomalies] == [AnomalyKind.IMPLAUSIBLE_JUMP]


def after_reset(r3_wh: int) -> Accountant:
    """r1, r2 on the old clock; the reset seeing 1,051,000 Wh at T0 + 3700 s; r3, r4 after."""
    acc = Accountant([(SMALL, 1)])
    acc.feed(1, "m1", AHEAD, 1_000_000 * WH)
    acc.feed(2, "m1", AHEAD + 60 * S, 1_001_000 * WH)
    acc.ledger.reset_clock(
        ClockReset(1, "m1", 2, T0 + 3705 * S, Seen(1_051_000 * WH, T0 + 3700 * S))
    )
    acc.feed(3, "m1", T0 + 3720 * S, r3_wh * WH)  # confirms r2: +1,000 Wh (old clock)
    acc.feed(4, "m1", T0 + 3780 * S, 1_058_000 * WH)  # confirms r3: across the reset
    return acc


def test_more_than_the_plant_can_produce_since_the_seen_reading_is_quarantined() -> None:
    # r3 at T0 + 3720 s reads 1,057,000 Wh: 6,000 Wh in the 20 s since the seen reading
    # > bound(60 s) = 5,000 Wh. The whole step r2 → r3 (56,000 Wh) waits for a decision.
    acc = after_reset(1_057_000)
    assert acc.energy_mwh("p") == 1000 * WH
    [jump] = acc.anomalies
    assert (jump.kind, jump.delta_mwh) == (AnomalyKind.IMPLAUSIBLE_JUMP, 56_000 * WH)
    # Exactly at the bound is accepted: 1,056,000 Wh, a step of 55,000 Wh.
    acc = after_reset(1_056_000)
    assert acc.energy_mwh("p") == 56_000 * WH
    assert acc.anomalies == []


def test_a_spike_right_after_the_reset_is_still_an_outlier() -> None:
    # r4 = 9,000,000 Wh is contradicted by r5 = 1,053,000: dropped. r6 confirms r5, and
    # the step r3 → r5 crosses the reset: 2,000 Wh in the 120 s since the seen reading.
    acc = Accountant([(SMALL, 1)])
    for r in (
        (1, "m1", AHEAD, 1_000_000 * WH, None),
        (2, "m1", AHEAD + 60 * S, 1_001_000 * WH, None),
        (3, "m1", AHEAD + 120 * S, 1_002_000 * WH, None),
    ):
        acc.feed(*r)
    acc.ledger.reset_clock(
        ClockReset(1, "m1", 3, T0 + 3700 * S, Seen(1_051_000 * WH, T0 + 3660 * S))
    )
    acc.feed(4, "m1", T0 + 3720 * S, 9_000_000 * WH)  # confirms r3 (old clock): +1,000 Wh
    acc.feed(5, "m1", T0 + 3780 * S, 1_053_000 * WH)
    acc.feed(6, "m1", T0 + 3840 * S, 1_054_000 * WH)
    assert [(a.kind, a.reading_id) for a in acc.anomalies] == [(AnomalyKind.OUTLIER, 4)]
    assert acc.energy_mwh("p") == (1000 + 1000 + 51_000) * WH


def test_a_mwh_completed_after_the_reset_may_be_earlier_than_the_one_before() -> None:
    # 5000 kW. Ten years ahead: r1 0 (AHEAD), r2 0.9 MWh (+1 h), r3 1.5 MWh (+2 h).
    # Seen 2.0 MWh at T0 − 10 min. r4 2.05 MWh at T0 confirms r3: MWh 1 completes at r3's
    # time (2036). r5 confirms r4: 0.05 MWh in 10 min since the seen reading is plausible,
    # the step r3 → r4 adds 0.55 MWh and MWh 2 completes at r4's time, T0: ten years
    # before MWh 1.
    acc = Accountant([(BIG, 10)])
    acc.add_row("p", "ann", "1", BEGINNING_US)
    due = [
        acc.feed(1, "m1", AHEAD, 0).mints,
        acc.feed(2, "m1", AHEAD + H, 900_000_000).mints,
        acc.feed(3, "m1", AHEAD + 2 * H, 1_500_000_000).mints,
    ]
    acc.ledger.reset_clock(ClockReset(1, "m1", 3, T0 - 5 * 60 * S, Seen(2 * MWH, T0 - 600 * S)))
    due.append(acc.feed(4, "m1", T0, 2_050_000_000).mints)
    due.append(acc.feed(5, "m1", T0 + 60 * S, 2_060_000_000).mints)
    assert due == [[], [], [], [MintDue("p", 1, AHEAD + 2 * H)], [MintDue("p", 2, T0)]]
    assert acc.books["p"].credits == {1: {"ann": 10}, 2: {"ann": 10}}
    assert acc.verify("p") == []


def test_the_reset_enters_at_its_position_and_waits_for_the_batch_that_feeds_it() -> None:
    story = [
        (1, "m1", AHEAD, 1_000_000 * WH, None),
        (2, "m1", AHEAD + 60 * S, 1_001_000 * WH, None),
        (3, "m1", AHEAD + 120 * S, 1_002_000 * WH, None),
        (4, "m1", T0 + 3720 * S, 1_052_000 * WH, None),
        (5, "m1", T0 + 3780 * S, 1_053_000 * WH, None),
    ]
    reset = ClockReset(7, "m1", 3, T0 + 3700 * S, Seen(1_051_000 * WH, T0 + 3660 * S))
    # One batch from scratch (a replay) and batches cut anywhere give the same state.
    whole = Ledger([SMALL])
    list(whole.run(story, [], caught_up=True, resets=[reset]))
    for cut in range(len(story) + 1):
        ledger = Ledger([SMALL])
        list(ledger.run(story[:cut], [], caught_up=False, resets=[reset]))
        assert ledger.state.last_reset_id == (7 if cut > 3 else 0)  # not before r3 is fed
        state = LedgerState.from_json(ledger.state.to_json())  # a commit between batches
        ledger = Ledger([SMALL], state)
        list(ledger.run(story[cut:], [], caught_up=True, resets=[reset]))
        assert ledger.state.to_json() == whole.state.to_json()
    assert whole.state.plants["p"].e_mwh == 52_000 * WH


def test_a_reset_rides_along_with_anomaly_decisions_and_through_json() -> None:
    ledger = Ledger([SMALL])
    ledger.feed(1, "m1", AHEAD, 1_000_000 * WH)
    ledger.reset_clock(ClockReset(1, "m1", 1, T0, Seen(1_000_500 * WH, T0 - S)))
    text = ledger.state.to_json()
    assert '"last_reset_id":1' in text
    assert LedgerState.from_json(text).to_json() == text
    assert LedgerState.from_json(text).devices["m1"].reset is not None
    with pytest.raises(ValueError, match="applied twice"):
        ledger.reset_clock(ClockReset(1, "m1", 1, T0))
    # Decisions and resets at the same position are independent: either order, one state.
    jump = Decision(1, "p", "m1", 1, True, 0, T0, 1)
    one, two = Ledger([SMALL]), Ledger([SMALL])
    reset = ClockReset(1, "m1", 1, T0)
    list(one.run([(1, "m1", AHEAD, 0, None)], [jump], caught_up=True, resets=[reset]))
    two.feed(1, "m1", AHEAD, 0)
    two.reset_clock(reset)
    two.decide(jump)
    assert one.state.to_json() == two.state.to_json()


def test_a_state_stored_before_clock_resets_existed_still_loads() -> None:
    old = '{"position":3,"last_decision_id":0,"devices":{"m1":[[2,5,6],[3,7,8]]},"plants":{}}'
    state = LedgerState.from_json(old)
    assert (state.last_reset_id, state.devices["m1"].reset) == (0, None)


def test_a_reset_of_a_device_no_plant_accounts_only_moves_on() -> None:
    ledger = Ledger([SMALL])
    ledger.reset_clock(ClockReset(1, "other", 0, T0))
    assert (ledger.state.last_reset_id, ledger.state.devices) == (1, {})


def test_a_seen_reading_outside_the_step_it_crosses_is_not_used() -> None:
    # docs/accounting.md "Clocks": V counts only when F ≤ V ≤ P. A rejected reading
    # above P (a glitch the gate let through to "not after the last") would make
    # P − V negative and let a step of any size in; one below F says nothing about the
    # step either. Both fall back to F at the decision's time: the 50,000 Wh step in the
    # 20 s since the decision exceeds bound(60 s) = 5,000 Wh and waits in quarantine.
    for v_wh in (10**12, 999_000):
        acc, _ = field_story(Seen(v_wh * WH, T0 + 3660 * S))
        assert acc.energy_mwh("p") == 2000 * WH, v_wh
        [jump] = acc.anomalies
        assert (jump.kind, jump.delta_mwh) == (AnomalyKind.IMPLAUSIBLE_JUMP, 50_000 * WH)
    # At the edges V counts: V = P (nothing added since V) and V = F.
    acc, _ = field_story(Seen(1_052_000 * WH, T0 + 3660 * S))
    assert acc.energy_mwh("p") == 52_000 * WH
    acc, _ = field_story(Seen(1_002_000 * WH, T0 + 3700 * S))
    assert [a.kind for a in acc.anomalies] == [AnomalyKind.IMPLAUSIBLE_JUMP]
