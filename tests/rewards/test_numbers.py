"""Bounded exact decimals: refused outside their range or past their places, never rounded."""

from __future__ import annotations

import tracemalloc
from decimal import Decimal

import pytest

from heliod.rewards.numbers import brief, exact
from heliod.rewards.register import is_register_amount, register_amount


def test_exact_keeps_the_value_as_written_or_refuses_it() -> None:
    within = {"low": Decimal(0), "high": Decimal(100), "places": 3}
    assert str(exact(Decimal("25.00"), **within)) == "25.00"  # as written
    assert str(exact(Decimal("1.5000000"), **within)) == "1.500"  # zeros past 3 places
    with pytest.raises(ValueError, match=r"^has more than 3 decimal places, got 1.0001 "):
        exact(Decimal("1.0001"), **within)
    with pytest.raises(ValueError, match=r"^must be 0\.\.100 with at most 3 decimal places"):
        exact(Decimal("100.0001"), **within)
    with pytest.raises(ValueError, match=r"^must be > 0 and ≤ 10\^7 with at most 3 decimal"):
        exact(Decimal(0), low=Decimal(0), high=Decimal(10**7), places=3, above=True)
    with pytest.raises(ValueError, match="got NaN"):
        exact(Decimal("NaN"), **within)


def test_register_amounts_are_stored_in_their_shortest_form() -> None:
    assert str(register_amount(Decimal("1000"))) == "1E+3"
    assert str(register_amount(Decimal("0.123456789"))) == "0.123456789"
    assert register_amount(Decimal("0E-1000000")) == 0
    assert is_register_amount(register_amount(Decimal("999999999999999.999999999")))
    assert not is_register_amount(Decimal("1E-10"))
    assert not is_register_amount(Decimal(10) ** 15 + 1)


def test_a_long_amount_is_checked_without_copying_its_digits() -> None:
    """A platform answer may be 32 MiB: a 5-million-digit amount is read, not unpacked
    digit by digit into a tuple (8 bytes a digit)."""
    long = Decimal("1." + "0" * 5_000_000)
    tracemalloc.start()
    try:
        taken = register_amount(long)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert taken == 1
    assert peak < 1_000_000


def test_brief_cuts_long_values() -> None:
    assert brief("short") == "short"
    assert brief("x" * 500) == "x" * 60 + "…" + "x" * 20 + " (500 characters)"
    assert brief(10**5000) == "a number of thousands of digits"
