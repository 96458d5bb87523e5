"""Impact figures (docs/milestones.md): CO2 avoided and households supplied, exact, rounded
once.

co2_avoided_kg = E in kWh × co2_g_per_kwh / 1000, rounded half to even to 0.001 kg;
households = E in kWh / household_kwh_per_year, rounded half to even to 0.1. A backer's
share is the CO2 of the MWh-fraction their units stand for: units / U MWh ×
co2_g_per_kwh (1 MWh × 1 g/kWh = 1 kg). Everything is computed as an exact fraction and
rounded at the end, so no intermediate step loses a digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

MWH_PER_KWH = 10**6  # E travels as integer mWh (milliwatt-hours): 1 kWh = 10^6 mWh
CO2_PLACES = 3
HOUSEHOLD_PLACES = 1


def round_half_even(x: Fraction, places: int) -> Decimal:
    """x rounded half to even to `places` decimal places, as an exact Decimal."""
    # From text, so that no context precision rounds a long coefficient (scaleb would).
    return Decimal(f"{round(x * 10**places)}E-{places}")


@dataclass(frozen=True, slots=True)
class ImpactRules:
    """A plant's [plants.impact]: the emission factor, its source, a household's use."""

    co2_g_per_kwh: Decimal
    source: str
    household_kwh_per_year: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Impact:
    """The plant's figures for an energy E."""

    co2_avoided_kg: Decimal
    households: Decimal | None


def plant_impact(rules: ImpactRules, e_mwh: int) -> Impact:
    """Figures for a plant's accounted energy E, given in integer mWh."""
    kwh = Fraction(e_mwh, MWH_PER_KWH)
    co2 = round_half_even(kwh * Fraction(rules.co2_g_per_kwh) / 1000, CO2_PLACES)
    per_home = rules.household_kwh_per_year
    homes = (
        None if per_home is None else round_half_even(kwh / Fraction(per_home), HOUSEHOLD_PLACES)
    )
    return Impact(co2, homes)


def backer_co2_kg(rules: ImpactRules, units: int, units_per_mwh: int) -> Decimal:
    """The CO2 avoided by the MWh-fraction `units` stand for (units / U × co2_g_per_kwh)."""
    return round_half_even(
        Fraction(units, units_per_mwh) * Fraction(rules.co2_g_per_kwh), CO2_PLACES
    )
