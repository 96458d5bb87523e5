"""Device values are rounded once, half to even, to 0.001, however many digits they carry."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heliod.rewards.units import (
    from_binary_float,
    quantize,
    scaled,
    scaled_by,
    unit_factor,
    wh_to_mwh,
)


def test_a_long_number_is_rounded_once_not_twice() -> None:
    """0.0014999… is nearer 0.001 than 0.002. An 800-digit context used to round it to
    0.0015 first, which half to even then took to 0.002."""
    long = Decimal("0.0014" + "9" * 900)
    assert scaled(long) == Decimal("0.001")
    assert scaled(Decimal("0.0000014" + "9" * 900), unit="kWh") == Decimal("0.001")
    assert scaled(Decimal("1.4" + "9" * 900), Decimal("0.001")) == Decimal("0.001")
    assert scaled(Decimal("0.0015")) == Decimal("0.002")  # a true half goes to even


def test_quantize_takes_every_digit_of_a_wide_value() -> None:
    wide = Decimal(10) ** 900 + Decimal("0.0005")  # 904 digits: past an 800-digit context
    assert quantize(wide) == Decimal(10) ** 900
    assert quantize(Decimal("999.9995")) == Decimal("1000.000")  # the carry adds a digit
    with pytest.raises(ValueError, match="out of range"):
        quantize(Decimal("1e20000"))


def test_a_double_is_taken_at_its_exact_binary_value() -> None:
    # 0.1 as a double is 0.1000000000000000055511151231257827…: scaled by 0.01 it is
    # 0.001000000000000000055…, and rounds once to 0.001.
    assert from_binary_float(0.1, Decimal("0.01")) == Decimal("0.001")
    assert from_binary_float(5e-324, Decimal(10) ** 9, "MWh") == Decimal("0.000")


UNITS = ["", "Wh", "kWh", "MWh", "W", "kW", "MW", "V"]
SCALES = [Decimal(1), Decimal("0.1"), Decimal("0.001"), Decimal(10), Decimal("1E-9")]


@given(
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.builds(Decimal, st.from_regex(r"-?[0-9]{1,900}\.[0-9]{1,900}", fullmatch=True)),
    st.sampled_from(SCALES),
    st.sampled_from(UNITS),
)
def test_scaled_by_one_factor_is_scaled(raw: Decimal, scale: Decimal, unit: str) -> None:
    """The factor worked out once gives the very same Decimal (value and digits) as scaled()."""
    try:
        expected = scaled(raw, scale, unit)
    except ValueError:  # beyond 10^10000: refused alike
        with pytest.raises(ValueError, match="out of range"):
            scaled_by(raw, scale * unit_factor(unit))
        return
    got = scaled_by(raw, scale * unit_factor(unit))
    assert str(got) == str(expected)


def test_scaled_by_examples() -> None:
    assert scaled_by(Decimal("1000.0135"), Decimal(1000)) == Decimal("1000013.500")
    assert str(scaled_by(Decimal("0.0000014" + "9" * 900), Decimal(1000))) == "0.001"
    assert str(scaled_by(Decimal("-0"), Decimal(1000))) == "-0.000"
    assert str(scaled_by(Decimal("228"), Decimal(1))) == "228.000"


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20)
    | st.builds(Decimal, st.from_regex(r"-?[0-9]{1,900}\.[0-9]{1,900}", fullmatch=True))
)
def test_wh_to_mwh_is_the_rounded_value_in_thousandths(value: Decimal) -> None:
    exact = Fraction(quantize(value)) * 1000
    assert exact.denominator == 1
    assert wh_to_mwh(value) == exact.numerator


def test_wh_to_mwh_examples() -> None:
    assert wh_to_mwh(Decimal("1.0005")) == 1000  # a true half goes to even
    assert wh_to_mwh(Decimal("1.0015")) == 1002
    assert wh_to_mwh(Decimal("-0.0005")) == 0
    assert wh_to_mwh(Decimal("1000013.000")) == 1_000_013_000
    assert wh_to_mwh(Decimal("0.0014" + "9" * 900)) == 1  # rounded once
    assert wh_to_mwh(Decimal(10) ** 900 + Decimal("0.0005")) == 10**903
