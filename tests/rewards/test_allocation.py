"""docs/accounting.md share register and allocation, by hand: floors of exact rational entitlements."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from heliod.rewards.allocation import Allocator
from heliod.rewards.register import BEGINNING_US, InForce, Register, ShareRow

H = 3_600_000_000  # µs per hour


def credits_over(
    allocator: Allocator, register: Register, times: list[int]
) -> list[dict[str, int]]:
    """Mint once per completion time with every stored row visible; credits of each mint."""
    out = []
    for t in times:
        allocator.use(register.weights_at(t, register.last_id))
        out.append(dict(allocator.mint()))
    return out


def test_weights_500_300_200_split_10_to_the_8_exactly() -> None:
    # U = 1 token × 10^8; shares 0.5/0.3/0.2 → 50,000,000 / 30,000,000 / 20,000,000.
    register = Register(
        [
            ShareRow(1, "ann", Decimal(500), BEGINNING_US),
            ShareRow(2, "bob", Decimal(300), BEGINNING_US),
            ShareRow(3, "cy", Decimal(200), BEGINNING_US),
        ]
    )
    allocator = Allocator(10**8)
    [credits] = credits_over(allocator, register, [0])
    assert credits == {"ann": 50_000_000, "bob": 30_000_000, "cy": 20_000_000}
    assert allocator.undistributed == 0
    assert allocator.entitlement("bob") == 30_000_000


def test_three_equal_backers_with_zero_decimals_the_contract_example() -> None:
    # U = 1: A_b(n) = n/3, floors 0,0,1,1,1,2,2 → credits 0,0,1,0,0,1,0 for each;
    # undistributed = n − 3 × floor(n/3) = 1,2,0,1,2,0,1.
    register = Register([ShareRow(i, b, Decimal(1), BEGINNING_US) for i, b in enumerate("abc", 1)])
    allocator = Allocator(1)
    per_backer: dict[str, list[int]] = {b: [] for b in "abc"}
    undistributed = []
    for n in range(1, 8):
        [credits] = credits_over(allocator, register, [n * H])
        for b in "abc":
            per_backer[b].append(credits.get(b, 0))
        assert all(units > 0 for units in credits.values())  # rows only for units > 0
        undistributed.append(allocator.undistributed)
    for b in "abc":
        assert per_backer[b] == [0, 0, 1, 0, 0, 1, 0]
    assert undistributed == [1, 2, 0, 1, 2, 0, 1]
    assert allocator.entitlement("a") == Fraction(7, 3)


def test_backer_joining_after_the_second_mwh() -> None:
    # U = 7; ann 1, bob 2 from the beginning; cy 4 from 2.5 h, i.e. after mint 2 (2 h)
    # and before mint 3 (3 h).
    # Mint 1: ann 7/3 → 2, bob 14/3 → 4; undistributed 1.
    # Mint 2: ann 14/3 → 4 (+2), bob 28/3 → 9 (+5); undistributed 14 − 13 = 1.
    # Mint 3, W = 7: ann +1 → 17/3 → 5 (+1), bob +2 → 34/3 → 11 (+2), cy +4 → 4 (+4);
    #   undistributed 21 − 20 = 1.
    # Mint 4: ann 20/3 → 6 (+1), bob 40/3 → 13 (+2), cy 8 (+4); undistributed 28 − 27 = 1.
    register = Register(
        [
            ShareRow(1, "ann", Decimal(1), BEGINNING_US),
            ShareRow(2, "bob", Decimal(2), BEGINNING_US),
            ShareRow(3, "cy", Decimal(4), 2 * H + H // 2),
        ]
    )
    allocator = Allocator(7)
    got = []
    for n in range(1, 5):
        [credits] = credits_over(allocator, register, [n * H])
        got.append((credits, allocator.undistributed))
    assert got == [
        ({"ann": 2, "bob": 4}, 1),
        ({"ann": 2, "bob": 5}, 1),
        ({"ann": 1, "bob": 2, "cy": 4}, 1),
        ({"ann": 1, "bob": 2, "cy": 4}, 1),
    ]
    assert allocator.balances() == {"ann": 6, "bob": 13, "cy": 8}
    assert allocator.entitlement("bob") == Fraction(40, 3)


def test_latest_row_with_valid_from_at_or_before_t_wins() -> None:
    # ann: 1 from the beginning, 3 from 10 h, stored in the opposite order.
    register = Register(
        [ShareRow(1, "ann", Decimal(3), 10 * H), ShareRow(2, "ann", Decimal(1), BEGINNING_US)]
    )
    assert register.weights_at(10 * H - 1, 2) == {"ann": Decimal(1)}
    assert register.weights_at(10 * H, 2) == {"ann": Decimal(3)}  # valid_from ≤ T


def test_weight_zero_row_is_an_exit() -> None:
    # bob leaves at 1.5 h: mint 1 (1 h) splits 10 units 5/5, mint 2 (2 h) gives ann all.
    register = Register(
        [
            ShareRow(1, "ann", Decimal(1), BEGINNING_US),
            ShareRow(2, "bob", Decimal(1), BEGINNING_US),
            ShareRow(3, "bob", Decimal(0), H + H // 2),
        ]
    )
    assert register.weights_at(2 * H, 3) == {"ann": Decimal(1)}
    allocator = Allocator(10)
    assert credits_over(allocator, register, [H, 2 * H]) == [{"ann": 5, "bob": 5}, {"ann": 10}]


def test_row_only_visible_to_mints_committed_after_it_was_stored() -> None:
    # The late row 2 (bob, valid from the beginning) is not seen with upto_id = 1.
    register = Register(
        [ShareRow(1, "ann", Decimal(1), BEGINNING_US), ShareRow(2, "bob", Decimal(1), 0)]
    )
    assert register.weights_at(H, 1) == {"ann": Decimal(1)}
    assert register.weights_at(H, 2) == {"ann": Decimal(1), "bob": Decimal(1)}
    assert register.weights_at(H, 1).key != register.weights_at(H, 2).key


def test_no_share_in_force_leaves_all_of_u_undistributed() -> None:
    # cy's row starts at 5 h; a mint at 1 h has nobody to credit: undistributed U = 10^8.
    register = Register([ShareRow(1, "cy", Decimal(1), 5 * H)])
    allocator = Allocator(10**8)
    assert credits_over(allocator, register, [H]) == [{}]
    assert allocator.undistributed == 10**8
    # At 6 h cy holds everything; the earlier undistributed balance stays undistributed.
    assert credits_over(allocator, register, [6 * H]) == [{"cy": 10**8}]
    assert allocator.undistributed == 10**8


def test_decimal_weights_are_exact() -> None:
    # 0.1 and 0.2 (not binary floats): shares 1/3 and 2/3 of U = 3 → 1 and 2 exactly.
    register = Register(
        [ShareRow(1, "a", Decimal("0.1"), BEGINNING_US), ShareRow(2, "b", Decimal("0.2"), 0)]
    )
    allocator = Allocator(3)
    assert credits_over(allocator, register, [H]) == [{"a": 1, "b": 2}]
    assert allocator.undistributed == 0


def test_advance_equals_that_many_single_mints() -> None:
    # 3 equal backers, U = 1, 7 mints at once: each ⌊7/3⌋ = 2, undistributed 1.
    weights = {b: Decimal(1) for b in "abc"}
    allocator = Allocator(1)
    allocator.use(InForce.of((1, 1), weights))
    assert allocator.advance(7) == {"a": 2, "b": 2, "c": 2}
    assert allocator.undistributed == 1
    assert allocator.advance(0) == {}


def test_units_per_mint_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Allocator(0)


def test_negative_weight_is_refused() -> None:
    allocator = Allocator(1)
    with pytest.raises(ValueError):
        allocator.use(InForce.of((1, 1), {"a": Decimal(-1)}))
