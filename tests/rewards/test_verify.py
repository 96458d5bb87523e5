"""`verify_plant` on hand-made books: clean books pass, every corruption is reported."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest

from heliod.rewards.events import mint_body
from heliod.rewards.register import BEGINNING_US, ShareRow
from heliod.rewards.times import rfc3339
from heliod.rewards.verify import MintRecord, WeightsInForce, verify_plant
from heliod.rewards.verify_stored import StoredRow, check_events, check_positions

from .accountant import Accountant, Books
from .test_ledger import BIG, H, feed, hourly_mwh


def books_of_four_mints() -> Books:
    """U = 7, ann 1 / bob 2, cy 4 from 2.5 h; MWh k completes at k hours (test_ledger)."""
    acc = Accountant([(BIG, 7)])
    acc.add_row("p", "ann", "1", BEGINNING_US)
    acc.add_row("p", "bob", "2", BEGINNING_US)
    acc.add_row("p", "cy", "4", 2 * H + H // 2)
    feed(acc, hourly_mwh(4))
    return acc.books["p"]


def check(books: Books, balances: dict[str, int] | None = None) -> list[str]:
    """verify_plant over (possibly corrupted) books."""
    problems: list[str] = verify_plant(
        "p",
        units_per_mwh=books.units_per_mwh,
        mints=books.mints,
        credits=books.credits,
        rows=books.rows,
        balances=balances,
    )
    return problems


def test_clean_books_verify() -> None:
    books = books_of_four_mints()
    assert check(books, books.balances()) == []


def test_one_unit_more_to_one_backer_is_reported() -> None:
    books = copy.deepcopy(books_of_four_mints())
    books.credits[2]["ann"] += 1
    assert check(books)


def test_a_unit_moved_between_backers_is_reported() -> None:
    # Totals and conservation still hold; only the per-backer floors catch it.
    books = copy.deepcopy(books_of_four_mints())
    books.credits[3]["bob"] -= 1
    books.credits[3]["ann"] += 1
    assert check(books)


def test_a_dropped_mint_is_reported() -> None:
    books = copy.deepcopy(books_of_four_mints())
    del books.mints[1]
    del books.credits[2]
    assert check(books)


def test_the_last_mint_dropped_with_its_credits_kept_is_reported() -> None:
    books = copy.deepcopy(books_of_four_mints())
    books.mints.pop()
    assert check(books)


def test_a_mint_recorded_twice_is_reported() -> None:
    books = copy.deepcopy(books_of_four_mints())
    books.mints.append(books.mints[-1])
    assert check(books)


def test_a_negative_credit_row_is_reported() -> None:
    books = copy.deepcopy(books_of_four_mints())
    books.credits[4]["dan"] = -1
    books.credits[4]["ann"] += 1
    assert check(books)


def test_a_wrong_undistributed_balance_is_reported() -> None:
    books = copy.deepcopy(books_of_four_mints())
    books.mints[-1] = replace(books.mints[-1], undistributed_after=0)
    assert check(books)


def test_a_mint_of_the_wrong_size_is_reported() -> None:
    books = copy.deepcopy(books_of_four_mints())
    books.mints[0] = replace(books.mints[0], units=8)
    assert check(books)


def test_balances_that_differ_from_the_credits_are_reported() -> None:
    books = books_of_four_mints()
    shown = books.balances()
    shown["cy"] += 1
    assert check(books, shown)


# -- the weights, recomputed from the raw rows by verify's own code ---------------------


def test_weights_in_force_read_the_rows_literally() -> None:
    # ann 1 from the beginning, corrected to 3 (same valid_from, stored later); bob 2 from
    # 2 h, leaving (0) at 5 h; cy 4 from 1 h but stored after the first mint (row 5).
    rows = [
        ShareRow(1, "ann", Decimal(1), BEGINNING_US),
        ShareRow(2, "bob", Decimal(2), 2 * H),
        ShareRow(3, "ann", Decimal(3), BEGINNING_US),
        ShareRow(4, "bob", Decimal(0), 5 * H),
        ShareRow(5, "cy", Decimal(4), H),
    ]
    weights = WeightsInForce(rows)
    assert weights.at(H, 1) == {"ann": Fraction(1)}  # as mint 1 saw it: row 1 only
    assert weights.at(H, 3) == {"ann": Fraction(3)}  # the correction, stored last, wins
    assert weights.at(3 * H, 4) == {"ann": Fraction(3), "bob": Fraction(2)}
    assert weights.at(6 * H, 5) == {"ann": Fraction(3), "cy": Fraction(4)}  # bob left
    assert weights.at(-(2**62) - 1, 5) == {}


def test_credits_that_follow_the_superseded_row_are_reported() -> None:
    # U = 4: ann 1 then corrected to 3 (row 3), bob 1: 3 : 1 gives ann 3, bob 1. Books
    # credited as if the older row won (1 : 1, 2 and 2) balance perfectly, yet the exact
    # entitlements from the rows say otherwise.
    acc = Accountant([(BIG, 4)])
    acc.add_row("p", "ann", "1", BEGINNING_US)
    acc.add_row("p", "bob", "1", BEGINNING_US)
    acc.add_row("p", "ann", "3", BEGINNING_US)
    feed(acc, hourly_mwh(1))
    books = copy.deepcopy(acc.books["p"])
    assert books.credits == {1: {"ann": 3, "bob": 1}}
    assert check(books) == []
    books.credits[1] = {"ann": 2, "bob": 2}
    problems = check(books)
    assert problems[0] == (
        "p: mint 1 credits differ from the exact entitlements: stored vs entitled "
        "ann: 2 vs 3, bob: 2 vs 1"
    )


# -- register positions against the rows' stored times -----------------------------------


def mint(k: int, pos: int, committed_us: int | None) -> MintRecord:
    return MintRecord("p", k, k * H, 7, pos, 0, committed_us)


def test_positions_that_agree_with_the_stored_times_pass() -> None:
    rows = [StoredRow(1, 100), StoredRow(2, 100), StoredRow(5, 300)]
    mints = [mint(1, 2, 200), mint(2, 2, 250), mint(3, 5, 300)]
    assert check_positions("p", mints, rows) == []


def test_a_row_stored_before_the_mint_but_left_out_is_reported() -> None:
    rows = [StoredRow(1, 100), StoredRow(2, 150)]
    assert check_positions("p", [mint(1, 1, 200)], rows) == [
        "p: mint 1 (committed at 200 µs) left out register row 2, stored before it at 150 µs"
    ]


def test_a_row_stored_after_the_mint_but_used_is_reported() -> None:
    rows = [StoredRow(1, 100), StoredRow(2, 250)]
    assert check_positions("p", [mint(1, 2, 200)], rows) == [
        "p: mint 1 (committed at 200 µs) used register row 2, stored after it at 250 µs"
    ]


def test_a_position_that_is_no_row_or_goes_back_is_reported() -> None:
    rows = [StoredRow(1, 100), StoredRow(3, 100)]
    problems = check_positions("p", [mint(1, 3, 200), mint(2, 2, 300), mint(3, 1, 400)], rows)
    assert problems[:3] == [
        "p: mint 2 records register position 2, which is no row of the plant's register",
        "p: mint 2 records register position 2, before the 3 of an earlier mint",
        "p: mint 3 records register position 1, before the 3 of an earlier mint",
    ]


def test_after_a_clock_jump_times_prove_nothing() -> None:
    # Row 2 stored at 150 by a clock that later went back; mint 2 committed at 120 on the
    # right clock: the times disagree with the ids, and only the ids are checked.
    rows = [StoredRow(1, 100), StoredRow(2, 150)]
    assert check_positions("p", [mint(1, 1, 140), mint(2, 2, 120)], rows) == []


# -- push bodies against the ledger ----------------------------------------------------------


def bodies(books: Books) -> dict[int, str]:
    """The push bodies the daemon would have stored for these books."""
    out = {}
    for m in books.mints:
        out[m.mwh_index] = mint_body(
            "p",
            m.mwh_index,
            completed_at=rfc3339(m.completed_at_us),
            symbol="SLR",
            decimals=0,
            units=m.units,
            credits=books.credits.get(m.mwh_index, {}),
            undistributed=m.undistributed_after,
        )
    return out


def check_bodies(books: Books, events: dict[int, str]) -> list[str]:
    problems: list[str] = check_events(
        "p", symbol="SLR", decimals=0, mints=books.mints, credits=books.credits, events=events
    )
    return problems


def test_push_bodies_that_say_what_the_ledger_says_pass() -> None:
    books = books_of_four_mints()
    assert check_bodies(books, bodies(books)) == []


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("units", 8, "units is 8, the ledger says 7"),
        ("undistributed_units", 0, "undistributed_units is 0, the ledger says 1"),
        ("credits", [{"backer": "ann", "units": 3}], "credits is [('ann', 3)]"),
        ("id", "p:3", "id is 'p:3', the ledger says 'p:2'"),
        ("completed_at", "2024-01-01T00:00:00Z", "completed_at is 1704067200000000"),
        ("symbol", "XYZ", "symbol is 'XYZ', the ledger says 'SLR'"),
    ],
)
def test_a_push_body_that_disagrees_with_the_ledger_is_reported(
    field: str, value: object, problem: str
) -> None:
    books = books_of_four_mints()
    events = bodies(books)
    body = json.loads(events[2])
    body[field] = value
    events[2] = json.dumps(body)
    [reported] = check_bodies(books, events)
    assert reported.startswith(f"p: mint 2: the stored push body's {problem}")


def test_a_missing_or_broken_push_body_is_reported() -> None:
    books = books_of_four_mints()
    events = bodies(books)
    events[1] = "{not json"
    del events[4]
    assert check_bodies(books, events) == [
        "p: mint 1: its stored push body is not a JSON object",
        "p: mint 4: its stored push body is not a JSON object",
    ]


def test_a_backer_never_in_force_at_a_mint_is_no_holder() -> None:
    """Invariant 2 allows one unit of rounding per backer who held a share at some mint:
    zed, whose only row starts after every mint, adds no slack for a unit gone missing."""
    acc = Accountant([(BIG, 7)])
    acc.add_row("p", "ann", "1", BEGINNING_US)
    acc.add_row("p", "bob", "2", BEGINNING_US)
    acc.add_row("p", "zed", "5", 2**61)
    feed(acc, hourly_mwh(4))
    books = copy.deepcopy(acc.books["p"])
    assert check(books) == []
    books.credits[4]["ann"] -= 1  # a unit lost: undistributed 2 with 2 holders
    books.mints[-1] = replace(books.mints[-1], undistributed_after=2)
    assert "p: undistributed 2 is not < 0 + 2 backers" in check(books)


def test_a_clock_jump_elsewhere_does_not_stop_the_other_stretches_being_checked() -> None:
    # The clock went back between rows 2 and 3 (row 3 stored at 50): mint 2, between
    # them, cannot be judged by times. Mint 1 (before the jump) and mint 3 (after it)
    # still are: mint 1 left out row 2, stored before its commit; mint 3 used row 4,
    # stored after its commit.
    rows = [StoredRow(1, 100), StoredRow(2, 150), StoredRow(3, 50), StoredRow(4, 90)]
    mints = [mint(1, 1, 200), mint(2, 2, 210), mint(3, 4, 60)]
    assert check_positions("p", mints, rows) == [
        "p: mint 1 (committed at 200 µs) left out register row 2, stored before it at 150 µs",
        "p: mint 3 (committed at 60 µs) used register row 4, stored after it at 90 µs",
    ]


def test_a_mint_without_a_commit_time_leaves_the_others_checked() -> None:
    rows = [StoredRow(1, 100), StoredRow(2, 250)]
    assert check_positions("p", [mint(1, 1, None), mint(2, 2, 200)], rows) == [
        "p: mint 2 (committed at 200 µs) used register row 2, stored after it at 250 µs"
    ]


def test_a_push_body_with_a_key_more_or_less_is_reported() -> None:
    books = books_of_four_mints()
    events = bodies(books)
    body = json.loads(events[1])
    body["bonus"] = 1
    events[1] = json.dumps(body)
    body = json.loads(events[2])
    del body["decimals"]
    events[2] = json.dumps(body)
    body = json.loads(events[3])
    body["credits"][0]["note"] = "x"
    events[3] = json.dumps(body)
    problems = check_bodies(books, events)
    assert problems[0].startswith("p: mint 1: the stored push body has keys [")
    assert "'bonus'" in problems[0]
    assert problems[1].startswith("p: mint 2: the stored push body has keys [")
    assert problems[2].startswith("p: mint 3: the stored push body's credits")
    assert len(problems) == 3
