"""Exact conversion of device values to heliod's base units (docs/accounting.md).

Energy is kept in Wh and power in W, each rounded once, half to even, to 0.001.
Inside the ledger energy travels as integer milliwatt-hours (mWh), which is the same
number without the decimal point.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation

# Enough digits for every value a device sends (a double's exact binary value has at most
# 767 significant digits). A longer number, e.g. JSON text, makes a product inexact here:
# it is then computed again in a context as wide as it needs, so quantize() is the only
# rounding.
_EXACT = Context(prec=800, rounding=ROUND_HALF_EVEN)
_PRODUCT = Context(prec=800, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Inexact])
_MILLI = Decimal("0.001")
_THOUSAND = Decimal(1000)
MAX_ADJUSTED = 10_000  # above 10^10000, quantize() refuses instead of writing every digit

ENERGY_UNITS: dict[str, Decimal] = {
    "Wh": Decimal(1),
    "kWh": Decimal(1000),
    "MWh": Decimal(1_000_000),
}
POWER_UNITS: dict[str, Decimal] = {
    "W": Decimal(1),
    "kW": Decimal(1000),
    "MW": Decimal(1_000_000),
}
# Units heliod does not convert: the value is kept as read (with scale applied).
PASSTHROUGH_UNITS = frozenset({"", "V", "A", "Hz", "VA", "var", "VAr", "%", "C", "°C", "s", "Ah"})

MAX_ENERGY_WH = Decimal(10) ** 15  # docs/accounting.md: above this a counter value is rejected


class UnitError(ValueError):
    """A unit name heliod does not know."""


def unit_factor(unit: str) -> Decimal:
    """Factor that turns a value in `unit` into Wh, W, or itself for other units."""
    if unit in ENERGY_UNITS:
        return ENERGY_UNITS[unit]
    if unit in POWER_UNITS:
        return POWER_UNITS[unit]
    if unit in PASSTHROUGH_UNITS:
        return Decimal(1)
    raise UnitError(f"unknown unit {unit!r}")


def is_known_unit(unit: str) -> bool:
    """True when `unit` is one heliod can convert or pass through."""
    return unit in ENERGY_UNITS or unit in POWER_UNITS or unit in PASSTHROUGH_UNITS


def _wide(digits: int) -> Context:
    """A context that holds `digits` significant digits without rounding."""
    return _EXACT if digits <= _EXACT.prec else Context(prec=digits, rounding=ROUND_HALF_EVEN)


def _product(a: Decimal, b: Decimal) -> Decimal:
    try:
        return _PRODUCT.multiply(a, b)
    except Inexact:  # a product has at most as many digits as its factors together
        return _wide(len(a.as_tuple().digits) + len(b.as_tuple().digits)).multiply(a, b)


def quantize(value: Decimal) -> Decimal:
    """Round once, half to even, to 0.001 (NaN and infinities pass through unchanged).

    ValueError above 10^10000: no device value is that large, and writing it out would not end.
    """
    if not value.is_finite():
        return value
    if value.adjusted() > MAX_ADJUSTED:
        raise ValueError(f"{value:.3e} is out of range (more than 10^{MAX_ADJUSTED})")
    # Integer digits, three decimals, and one more when rounding carries (999.9995).
    return value.quantize(_MILLI, rounding=ROUND_HALF_EVEN, context=_wide(value.adjusted() + 5))


def scaled(raw: Decimal | int, scale: Decimal = Decimal(1), unit: str = "") -> Decimal:
    """raw × scale × unit factor, computed exactly, then rounded once to 0.001."""
    value = raw if isinstance(raw, Decimal) else Decimal(raw)
    if not value.is_finite():
        return value
    return quantize(_product(_product(value, scale), unit_factor(unit)))


def scaled_by(raw: Decimal, factor: Decimal) -> Decimal:
    """`scaled(raw, scale, unit)` with factor = scale × unit_factor(unit) worked out once by
    the caller (a decoder converting every value of one field): the same exact product,
    rounded once to 0.001."""
    if not raw.is_finite():
        return raw
    value = _product(raw, factor)
    if value.adjusted() + 5 <= _EXACT.prec:  # every device value: no wider context needed
        return value.quantize(_MILLI, rounding=ROUND_HALF_EVEN, context=_EXACT)
    return quantize(value)


def from_binary_float(x: float, scale: Decimal = Decimal(1), unit: str = "") -> Decimal:
    """A float register's exact binary value, Decimal(x), times scale and unit, rounded once."""
    return scaled(Decimal(x), scale, unit)


def parse_decimal(text: str) -> Decimal:
    """Parse a decimal number written as text; raises ValueError naming the text."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {text!r}") from None
    return value


def wh_to_mwh(value_wh: Decimal) -> int:
    """Exact integer mWh of a finite Wh value (rounded to 0.001 Wh first)."""
    if value_wh.is_finite() and value_wh.adjusted() + 5 <= _EXACT.prec:
        # quantize() without its calls (the store converts every reading's fields)
        q = value_wh.quantize(_MILLI, rounding=ROUND_HALF_EVEN, context=_EXACT)
    else:
        q = quantize(value_wh)
    return int(_EXACT.multiply(q, _THOUSAND))


def mwh_to_wh(value_mwh: int) -> Decimal:
    """Wh as an exact Decimal with three places from integer mWh."""
    return Decimal(value_mwh).scaleb(-3)


def amount(units: int, decimals: int) -> str:
    """Token units as a decimal string with exactly `decimals` digits after the point (`amount`)."""
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(decimals + 1, "0")
    if decimals == 0:
        return sign + digits
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"
