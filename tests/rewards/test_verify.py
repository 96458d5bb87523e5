"""`verify_plant` on hand-made books: clean books pass, every corruption is reported."""

from __future__ import annotations

import copy
from dataclasses import replace

from heliod.rewards.register import BEGINNING_US
from heliod.rewards.verify import verify_plant

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
        register=books.register,
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
