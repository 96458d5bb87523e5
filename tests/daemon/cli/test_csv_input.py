"""The CSV parsers of `backers import` and `readings import`: every number has a range, a
value is never rounded but once (readings, to 0.001), and nothing but InputError escapes."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from datetime import UTC
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heliod.daemon.cli.csv_input import InputError, parse_readings, parse_register
from heliod.rewards.register import is_register_amount

PARIS = ZoneInfo("Europe/Paris")
EXAMPLES = int(os.environ.get("HELIOD_HYPOTHESIS_EXAMPLES", "300"))


def register_problems(text: str) -> list[str]:
    with pytest.raises(InputError) as refused:
        parse_register(text, PARIS)
    return refused.value.problems


def readings_problems(text: str) -> list[str]:
    with pytest.raises(InputError) as refused:
        parse_readings(text, "d", PARIS)
    return refused.value.problems


def test_register_amounts_are_bounded_and_taken_exactly() -> None:
    rows = parse_register(
        "backer,amount\na,1000000000000000\nb,0.000000001\nc,2.500000000000\nd,0\n", PARIS
    )
    assert [(r.backer, r.amount) for r in rows] == [
        ("a", Decimal(10) ** 15),
        ("b", Decimal("1E-9")),
        ("c", Decimal("2.5")),
        ("d", Decimal(0)),
    ]
    long = "1." + "0" * 1500 + "1"  # more than 1,000 digits: once rounded away in silence
    assert register_problems(f"backer,amount\na,{long}\nb,1e999999999\n") == [
        "register: line 2: amount: has more than 9 decimal places, got 1."
        + "0" * 58
        + "…"
        + "0" * 19
        + "1 (1503 characters) (refused, never rounded)",
        "register: line 3: amount: must be 0..10^15 with at most 9 decimal places, "
        "got 1E+999999999",
    ]


def test_reading_values_are_bounded_and_rounded_once() -> None:
    [reading] = parse_readings(
        "timestamp,energy_wh,power_w\n2024-01-01T00:00:00Z,0.0014" + "9" * 900 + ",NaN\n",
        "d",
        PARIS,
    )
    assert reading.fields["energy_wh"] == Decimal("0.001")  # not 0.0015, then 0.002
    assert reading.fields["power_w"].is_nan()  # the store rejects it, as a live reading's
    assert readings_problems(
        "timestamp,energy_wh,power_w\n2024-01-01T00:00:00Z,1e999999999,-1e19\n",
    ) == [
        "readings: line 2: energy_wh: must be -10^18..10^18, got 1E+999999999",
        "readings: line 2: power_w: must be -10^18..10^18, got -1E+19",
    ]


def test_a_field_past_the_csv_modules_limit_is_an_input_error() -> None:
    text = "backer,amount\na," + "1" * 200_000 + "\n"
    assert register_problems(text) == [
        "register: line 2: not CSV: field larger than field limit (131072)"
    ]


# --- fuzzing: only InputError ever leaves a parser --------------------------------------

NUMBER_TEXT = st.one_of(
    st.from_regex(r"[+-]?\d{0,30}(\.\d{0,30})?([eE][+-]?\d{1,12})?", fullmatch=True),
    st.sampled_from(["NaN", "-Infinity", "inf", "1_000", "0x10", "", " ", "1e", "--1"]),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=12),
)
TIME_TEXT = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda t: t.isoformat()),
    st.from_regex(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?([+-]\d{2}:\d{2}|Z)?"),
    st.text(max_size=25),
)
BACKER_TEXT = st.one_of(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,10}", fullmatch=True), st.text(max_size=10)
)


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(BACKER_TEXT, NUMBER_TEXT, TIME_TEXT), min_size=1, max_size=4), max_size=6
    ),
    st.sampled_from([["backer", "amount"], ["backer", "amount", "valid_from"], ["amount", "x"]]),
)
def test_fuzzed_registers_give_rows_or_an_input_error(
    rows: list[list[str]], header: list[str]
) -> None:
    try:
        parsed = parse_register(_csv(header, rows), PARIS)
    except InputError as exc:
        problems = exc.problems
        assert problems and all("\n" not in p for p in problems)
        return
    assert all(is_register_amount(r.amount) for r in parsed)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(BACKER_TEXT, NUMBER_TEXT, TIME_TEXT), max_size=6))
def test_fuzzed_register_rows_give_rows_or_an_input_error(
    rows: list[tuple[str, str, str]],
) -> None:
    with contextlib.suppress(InputError):
        parse_register(_csv(["backer", "amount", "valid_from"], [list(r) for r in rows]), PARIS)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(TIME_TEXT, NUMBER_TEXT, NUMBER_TEXT), max_size=6))
def test_fuzzed_readings_give_readings_or_an_input_error(
    rows: list[tuple[str, str, str]],
) -> None:
    try:
        readings = parse_readings(
            _csv(["timestamp", "energy_wh", "power_w"], [list(r) for r in rows]), "d", UTC
        )
    except InputError:
        return
    for reading in readings:
        for value in reading.fields.values():
            assert not value.is_finite() or value == value.quantize(Decimal("0.001"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(max_size=300))
def test_fuzzed_text_gives_rows_or_an_input_error(text: str) -> None:
    for header in ("backer,amount,valid_from\n", "timestamp,energy_wh,power_w\n"):
        with contextlib.suppress(InputError):
            parse_register(header + text, PARIS)
        with contextlib.suppress(InputError):
            parse_readings(header + text, "d", PARIS)
