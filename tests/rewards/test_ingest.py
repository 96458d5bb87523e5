"""docs/accounting.md's rejection gate: a reading is counted but never accounted when it fails it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from heliod.rewards.ingest import Rejection, check

T0 = 1_700_000_000_000_000  # µs, 2023-11-14T22:13:20Z
FIVE_MIN = 300_000_000


def energy(value: str) -> dict[str, Decimal]:
    """A reading with only an energy counter, in Wh."""
    return {"energy_wh": Decimal(value)}


def test_first_reading_of_a_device_is_kept() -> None:
    assert check(T0, energy("12.345"), None, T0).kept


def test_timestamp_equal_to_the_last_is_rejected() -> None:
    verdict = check(T0, energy("1"), T0, T0)
    assert verdict.rejection is Rejection.NOT_AFTER_LAST
    assert not verdict.kept


def test_timestamp_before_the_last_is_rejected_one_microsecond_after_is_kept() -> None:
    assert check(T0 - 1, energy("1"), T0, T0).rejection is Rejection.NOT_AFTER_LAST
    assert check(T0 + 1, energy("1"), T0, T0 + 1).kept


def test_exactly_five_minutes_ahead_is_kept_one_microsecond_more_is_rejected() -> None:
    assert check(T0 + FIVE_MIN, energy("1"), None, T0).kept
    assert check(T0 + FIVE_MIN + 1, energy("1"), None, T0).rejection is Rejection.IN_FUTURE


def test_a_reading_without_energy_is_not_ordered_against_energy_readings() -> None:
    # The order rule speaks of the device's last energy_wh reading; a power-only reading
    # with an older timestamp carries nothing to account.
    assert check(T0 - 10, {"power_w": Decimal(5)}, T0, T0).kept


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("NaN", Rejection.NOT_FINITE),
        ("Infinity", Rejection.NOT_FINITE),
        ("-Infinity", Rejection.NOT_FINITE),
        ("-0.001", Rejection.NEGATIVE),
        ("1000000000000000.001", Rejection.TOO_LARGE),  # 10^15 Wh + 1 mWh
        ("1E+16", Rejection.TOO_LARGE),
    ],
)
def test_invalid_energy_values_are_rejected(value: str, reason: Rejection) -> None:
    verdict = check(T0, energy(value), None, T0)
    assert verdict.rejection is reason
    assert verdict.field == "energy_wh"


@pytest.mark.parametrize("value", ["0", "0.000", "-0", "1000000000000000", "1E+15"])
def test_boundary_energy_values_are_kept(value: str) -> None:
    # 0 is not negative and 10^15 Wh is not above 10^15 Wh.
    assert check(T0, energy(value), None, T0).kept
