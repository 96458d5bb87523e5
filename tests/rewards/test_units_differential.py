"""scaled_by and wh_to_mwh against the conversion they replaced, bit for bit.

The oracle below is the code of rewards/units.py before the MQTT ingest speed-up, kept
here only as the reference: every value (or the refusal) must be exactly what it gave.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from heliod.rewards.units import (
    ENERGY_UNITS,
    PASSTHROUGH_UNITS,
    POWER_UNITS,
    scaled_by,
    unit_factor,
    wh_to_mwh,
)

# -- the oracle: the previous rewards/units.py functions ------------------------------
_O_EXACT = Context(prec=800, rounding=ROUND_HALF_EVEN)
_O_PRODUCT = Context(prec=800, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Inexact])
_O_MILLI = Decimal("0.001")
_O_MAX_ADJUSTED = 10_000


def _o_wide(digits: int) -> Context:
    return _O_EXACT if digits <= _O_EXACT.prec else Context(prec=digits, rounding=ROUND_HALF_EVEN)


def _o_product(a: Decimal, b: Decimal) -> Decimal:
    try:
        return _O_PRODUCT.multiply(a, b)
    except Inexact:
        return _o_wide(len(a.as_tuple().digits) + len(b.as_tuple().digits)).multiply(a, b)


def _o_quantize(value: Decimal) -> Decimal:
    if not value.is_finite():
        return value
    if value.adjusted() > _O_MAX_ADJUSTED:
        raise ValueError(f"{value:.3e} is out of range (more than 10^{_O_MAX_ADJUSTED})")
    return value.quantize(_O_MILLI, rounding=ROUND_HALF_EVEN, context=_o_wide(value.adjusted() + 5))


def _o_scaled(raw: Decimal, unit: str) -> Decimal:
    if not raw.is_finite():
        return raw
    return _o_quantize(_o_product(_o_product(raw, Decimal(1)), unit_factor(unit)))


def _o_wh_to_mwh(value_wh: Decimal) -> int:
    q = _o_quantize(value_wh)
    return int(_O_EXACT.multiply(q, Decimal(1000)))


# -- comparison -----------------------------------------------------------------------
def _outcome(f, *args):  # type: ignore[no-untyped-def]
    """The exact result (sign, digits, exponent; or the int) or the exception's type."""
    try:
        value = f(*args)
    except Exception as exc:  # the type of the refusal is compared
        return ("refused", type(exc))
    if isinstance(value, Decimal):
        return ("value", value.as_tuple(), str(value))
    return ("value", type(value), value)


UNITS = sorted({*ENERGY_UNITS, *POWER_UNITS, *PASSTHROUGH_UNITS})

# Exponents that put the value around the edges: the exact context (prec 800, so
# adjusted + 5 <= 800), the quantize() bound (10^10000), the context's Emin/Emax.
_EDGE_ADJUSTED = [
    -1_000_800,
    -999_999,
    -4,
    -3,
    -2,
    0,
    790,
    794,
    795,
    796,
    797,
    800,
    9_999,
    10_000,
    10_001,
]


@st.composite
def decimals(draw: st.DrawFn) -> Decimal:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.decimals(allow_nan=True, allow_infinity=True))
    if kind == 1:
        text = draw(
            st.sampled_from(
                ["NaN", "-NaN", "Infinity", "-Infinity", "sNaN", "-0", "-0E-5", "0E+900"]
            )
        )
        return Decimal(text)
    digits = draw(
        st.lists(st.integers(0, 9), min_size=1, max_size=draw(st.sampled_from([5, 40, 900])))
    )
    sign = draw(st.integers(0, 1))
    if kind == 2:
        adjusted = draw(st.sampled_from(_EDGE_ADJUSTED)) + draw(st.integers(-2, 2))
        exponent = adjusted - len(digits) + 1
    else:
        exponent = draw(st.integers(-1_100_000, 12_000))
    # digits ending in 5 at the 0.001 boundary exercise the half-even tie
    return Decimal((sign, tuple(digits), exponent))


@settings(max_examples=1500, deadline=None)
@given(decimals(), st.sampled_from(UNITS))
@example(Decimal("0.0005"), "Wh")
@example(Decimal("-0.0015"), "kWh")
@example(Decimal("9" * 796 + "E-1"), "W")
@example(Decimal("9" * 800), "MWh")
@example(Decimal("1E+10000"), "W")
@example(Decimal("1E+9998"), "MW")
@example(Decimal("1E-2000000"), "kW")
@example(Decimal("-0"), "MWh")
def test_scaled_by_is_scaled(raw: Decimal, unit: str) -> None:
    assert _outcome(scaled_by, raw, unit_factor(unit)) == _outcome(_o_scaled, raw, unit)


@settings(max_examples=1500, deadline=None)
@given(decimals())
@example(Decimal("0.0005"))
@example(Decimal("0.0015"))
@example(Decimal("-0"))
@example(Decimal("9" * 799 + "E-3"))
@example(Decimal("9" * 795 + ".9995"))
@example(Decimal("1E+795"))
@example(Decimal("1E+796"))
@example(Decimal("1E+10001"))
@example(Decimal("NaN"))
@example(Decimal("-Infinity"))
@example(Decimal("sNaN"))
def test_wh_to_mwh_is_the_old_conversion(value: Decimal) -> None:
    assert _outcome(wh_to_mwh, value) == _outcome(_o_wh_to_mwh, value)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "sNaN", "1E+10001"])
def test_a_value_that_cannot_be_converted_is_refused(text: str) -> None:
    with pytest.raises((ValueError, OverflowError, InvalidOperation)):
        wh_to_mwh(Decimal(text))
