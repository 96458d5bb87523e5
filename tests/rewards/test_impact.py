"""Impact figures (docs/milestones.md) by hand: exact products, one rounding half to even."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from heliod.rewards.impact import (
    Impact,
    ImpactRules,
    backer_co2_kg,
    plant_impact,
    round_half_even,
)

FR = ImpactRules(Decimal("56"), "ADEME Base Carbone, French mix", Decimal("4700"))


def test_plant_figures() -> None:
    # E = 1,234,567.8 Wh = 1234.5678 kWh; × 56 g/kWh = 69,135.7968 g = 69.1357968 kg;
    # / 4700 kWh = 0.2626... households.
    assert plant_impact(FR, 1_234_567_800) == Impact(Decimal("69.136"), Decimal("0.3"))
    assert plant_impact(FR, 0) == Impact(Decimal("0.000"), Decimal("0.0"))
    # 10 GWh = 10^7 kWh: 560 t, 2127.659... households
    assert plant_impact(FR, 10**13) == Impact(Decimal("560000.000"), Decimal("2127.7"))


def test_halves_round_to_even() -> None:
    g100 = ImpactRules(Decimal("100"), "s")
    # 10.005 kWh × 100 g = 1.0005 kg → 1.000; 10.015 kWh → 1.0015 kg → 1.002
    assert plant_impact(g100, 10_005_000).co2_avoided_kg == Decimal("1.000")
    assert plant_impact(g100, 10_015_000).co2_avoided_kg == Decimal("1.002")
    homes = ImpactRules(Decimal("1"), "s", Decimal("4700"))
    # 1175 kWh / 4700 = 0.25 → 0.2; 1645 kWh / 4700 = 0.35 → 0.4
    assert plant_impact(homes, 1_175_000_000).households == Decimal("0.2")
    assert plant_impact(homes, 1_645_000_000).households == Decimal("0.4")
    assert plant_impact(g100, 1).households is None


def test_an_exact_factor_keeps_every_digit() -> None:
    # 0.1 as a binary float is 0.1000000000000000055...; the configured Decimal is 0.1.
    # 1 mWh = 10^-6 kWh: 3 × 10^-6 kWh × 0.1 g = 3 × 10^-10 kg → 0.000
    tiny = ImpactRules(Decimal("0.1"), "s")
    assert plant_impact(tiny, 3).co2_avoided_kg == Decimal("0.000")
    # 5,000,000,000 mWh = 5000 kWh × 0.1 g = 0.5 kg exactly
    assert plant_impact(tiny, 5 * 10**9).co2_avoided_kg == Decimal("0.500")


def test_backer_share_is_the_co2_of_the_mwh_their_units_stand_for() -> None:
    # U = 10^8 units per MWh; 12,345,678 units = 0.12345678 MWh × 56 kg/MWh = 6.91357968 kg
    assert backer_co2_kg(FR, 12_345_678, 10**8) == Decimal("6.914")
    one = ImpactRules(Decimal("1"), "s")
    # 5 / 10^4 MWh × 1 kg/MWh = 0.0005 → 0.000; 15 / 10^4 = 0.0015 → 0.002
    assert backer_co2_kg(one, 5, 10_000) == Decimal("0.000")
    assert backer_co2_kg(one, 15, 10_000) == Decimal("0.002")
    assert backer_co2_kg(FR, 0, 10**8) == Decimal("0.000")


@given(st.fractions(), st.integers(0, 6))
def test_round_half_even_is_pythons_round_of_the_exact_value(x: Fraction, places: int) -> None:
    got = round_half_even(x, places)
    assert Fraction(got) == round(x, places)
    assert got.as_tuple().exponent == -places
