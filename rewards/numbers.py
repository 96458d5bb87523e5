"""Bounded exact decimals: a number outside its range, or with more decimal places than
allowed, is refused whole; nothing here ever rounds a digit away."""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded

_SHOWN = 100  # characters of a refused value quoted in an error message


def brief(value: object) -> str:
    """A value as text for an error message, cut short when it is long."""
    try:
        text = str(value)
    except ValueError:  # an int past Python's 4,300-digit conversion limit
        return "a number of thousands of digits"
    if len(text) <= _SHOWN:
        return text
    return f"{text[:60]}…{text[-20:]} ({len(text)} characters)"


def parse_number(text: str) -> Decimal:
    """A finite decimal number written as text (exponent allowed); ValueError otherwise."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {brief(text)!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {brief(text)!r}")
    return value


def _bound(x: Decimal) -> str:
    # Powers of ten from a million up read better as 10^N than as a row of zeros.
    if abs(x) >= 10**6 and abs(x) == Decimal(1).scaleb(x.adjusted()):
        return f"{'-' if x < 0 else ''}10^{x.adjusted()}"
    return str(x)


def describe(low: Decimal, high: Decimal, places: int | None = None, *, above: bool = False) -> str:
    """The range in words, e.g. `0..10^15 with at most 9 decimal places`."""
    span = f"> {_bound(low)} and ≤ {_bound(high)}" if above else f"{_bound(low)}..{_bound(high)}"
    if places is None:
        return span
    if places == 0:
        return f"a whole number {span}"
    return f"{span} with at most {places} decimal places"


def exact(
    value: Decimal, *, low: Decimal, high: Decimal, places: int, above: bool = False
) -> Decimal:
    """`value` when finite, in [low, high] (> low when `above`), with at most `places`
    decimal places; ValueError naming the range otherwise.

    Trailing zeros past `places` change nothing and are cut down to `places`
    (`1.50000000000` is taken as 1.500000000); otherwise the value is kept as written.
    """
    in_range = value.is_finite() and low <= value <= high and not (above and value == low)
    if not in_range:
        raise ValueError(f"must be {describe(low, high, places, above=above)}, got {brief(value)}")
    # The range bounds the integer part, so this context holds every digit that may stay.
    # Its flags say what quantize() dropped (as_tuple() would copy every digit of a
    # 30-million-digit amount into a tuple): Rounded, digits past `places`; Inexact, not
    # all of them zeros.
    context = Context(prec=max(high.adjusted(), abs(low).adjusted(), 0) + places + 2)
    taken = value.quantize(Decimal(1).scaleb(-places), context=context)
    if context.flags[Inexact]:
        raise ValueError(
            f"has more than {places} decimal places, got {brief(value)} (refused, never rounded)"
        )
    return taken if context.flags[Rounded] else value
