"""The demo's sun: position against the NREL SPA worked example, a clear sky, a day."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from heliod.daemon.cli.sun import (
    Plane,
    Site,
    air_mass,
    azimuth_deg,
    beam_w_m2,
    elevation_deg,
    equator_facing,
    incidence_deg,
    plane_w_m2,
    sunrise,
)

# The worked example of Reda & Andreas, "Solar Position Algorithm for Solar Radiation
# Applications", NREL/TP-560-34302 (2008), as printed by NREL's spa_tester.c: Golden,
# Colorado, 2003-10-17 12:30:30 at UTC-7; a plane tilted 30° and turned 10° east of south.
# SPA: zenith 50.111622°, azimuth 194.340241°, incidence 25.187000°, sunrise 06:12:43.
# NOAA's simpler series are within a few tenths of a degree of it.
GOLDEN = Site(39.742476, -105.1786)
MST = timezone(timedelta(hours=-7))
SPA_TIME = datetime(2003, 10, 17, 12, 30, 30, tzinfo=MST)
PARIS = Site(48.8566, 2.3522)
PARIS_TZ = ZoneInfo("Europe/Paris")
OBLIQUITY_DEG = 23.44  # the declination at the solstices


def test_position_matches_the_spa_worked_example() -> None:
    assert 90 - elevation_deg(GOLDEN, SPA_TIME) == pytest.approx(50.111622, abs=0.3)
    assert azimuth_deg(GOLDEN, SPA_TIME) == pytest.approx(194.340241, abs=0.3)
    assert incidence_deg(GOLDEN, Plane(30, 170), SPA_TIME) == pytest.approx(25.187, abs=0.3)
    rise = sunrise(GOLDEN, date(2003, 10, 17), ZoneInfo("America/Denver"))
    assert rise is not None
    spa_rise = datetime(2003, 10, 17, 6, 12, 43, tzinfo=MST)
    assert abs(rise - spa_rise) < timedelta(minutes=2)


@pytest.mark.parametrize(
    ("day", "declination", "noon_utc"),
    [
        # solar noon in Paris: 12:00 UTC, 4 min earlier per degree east (9.4 min), and
        # the equation of time (+2.0 min on 21 December, -1.6 min on 20 June) earlier still
        (date(2024, 12, 21), -OBLIQUITY_DEG, (11, 48)),
        (date(2024, 6, 20), OBLIQUITY_DEG, (11, 52)),
    ],
)
def test_noon_at_the_solstices(day: date, declination: float, noon_utc: tuple[int, int]) -> None:
    start = datetime(day.year, day.month, day.day, 11, tzinfo=UTC)
    noon = max(
        (start + timedelta(minutes=m) for m in range(120)), key=lambda t: elevation_deg(PARIS, t)
    )
    assert abs(noon - start.replace(hour=noon_utc[0], minute=noon_utc[1])) <= timedelta(minutes=1)
    # the sun's height then is 90° - latitude + declination
    expected = 90 - PARIS.latitude_deg + declination
    assert elevation_deg(PARIS, noon) == pytest.approx(expected, abs=0.3)


def test_clear_sky_beam() -> None:
    # Kasten & Young: AM(0°) = 1 / (1 + 0.50572 × 96.07995^-1.6364) ≈ 0.99971
    assert air_mass(0) == pytest.approx(0.99971, abs=1e-5)
    assert air_mass(60) == pytest.approx(1.9942, abs=1e-3)  # ≈ 1/cos 60° = 2
    assert 35 < air_mass(89.999) < 40  # finite at the horizon
    # Meinel: 1353 × 0.7^(AM^0.678)
    assert beam_w_m2(0) == pytest.approx(1353 * 0.7 ** (0.99971**0.678), rel=1e-6)
    assert beam_w_m2(60) == pytest.approx(1353 * 0.7 ** (1.9942**0.678), rel=1e-3)
    assert beam_w_m2(90) == beam_w_m2(120) == 0


def test_a_plane_facing_the_sun_gets_beam_and_sky() -> None:
    # Golden at the SPA instant: the beam at 25.2° incidence and 10 % diffuse from the
    # 30° plane's view of the sky.
    beam = beam_w_m2(90 - elevation_deg(GOLDEN, SPA_TIME))
    expected = beam * math.cos(math.radians(incidence_deg(GOLDEN, Plane(30, 170), SPA_TIME)))
    expected += 0.1 * beam * (1 + math.cos(math.radians(30))) / 2
    assert plane_w_m2(GOLDEN, Plane(30, 170), SPA_TIME) == pytest.approx(expected)
    # the same plane turned away from the sun sees only the sky
    night_side = plane_w_m2(GOLDEN, Plane(90, 0), SPA_TIME)
    assert night_side == pytest.approx(0.1 * beam / 2)


def test_equator_facing_planes() -> None:
    assert equator_facing(PARIS) == Plane(30, 180)
    assert equator_facing(Site(-33.9, 18.4), 20) == Plane(20, 0)


def test_a_december_day_in_paris() -> None:
    # The numbers: a 250 kW plant gave about 240 kW at noon and 60 kW at 7 PM in
    # December. The sun sets before 5 PM there and stays low at noon (17.7°).
    plane = equator_facing(PARIS)
    rise = sunrise(PARIS, date(2024, 12, 21), PARIS_TZ)
    assert rise is not None
    assert (rise.hour, rise.minute) in {(8, 39), (8, 40), (8, 41), (8, 42)}

    def at(hour: int, minute: int = 0) -> float:
        return plane_w_m2(PARIS, plane, datetime(2024, 12, 21, hour, minute, tzinfo=PARIS_TZ))

    assert at(8, 0) == at(19) == 0
    assert 400 < at(12, 50) < 600  # a clear winter noon on a tilted plane: half the rating
    assert at(10) < at(12, 50) > at(15)
    june_noon = plane_w_m2(PARIS, plane, datetime(2024, 6, 21, 13, 50, tzinfo=PARIS_TZ))
    assert june_noon > 950


def test_no_sunrise_in_the_polar_night_and_in_the_midnight_sun() -> None:
    tromso = Site(69.65, 18.96)
    assert sunrise(tromso, date(2024, 12, 21), ZoneInfo("Europe/Oslo")) is None
    assert sunrise(tromso, date(2024, 6, 21), ZoneInfo("Europe/Oslo")) is None
