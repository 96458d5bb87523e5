"""Where the sun is and what a clear sky lets through: the demo plant's day.

Solar position: the NOAA Global Monitoring Laboratory's "General Solar Position
Calculations" (Spencer's 1971 Fourier series for the declination and the equation of
time, then the hour angle); about 0.2° from the NREL SPA, enough to draw a day. Clear-sky
beam (direct normal) irradiance: Meinel & Meinel (1976), I = 1353 W/m² × 0.7^(AM^0.678),
with the air mass of Kasten & Young (1989) so that it stays finite at the horizon; the
diffuse light of a clear sky taken as 10 % of the beam, as PVEducation's "Air Mass" page
does. A fixed plane sees the beam at its angle of incidence plus its share of the sky.
Floats throughout: this is the device side, nothing here enters accounting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SOLAR_CONSTANT_W_M2 = 1353.0  # Meinel's value
DIFFUSE_SHARE = 0.1  # clear-sky diffuse / beam
STC_W_M2 = 1000.0  # irradiance at which a panel gives its rated power
SUNRISE_ELEVATION_DEG = -0.833  # refraction and the sun's radius: the disc's top edge


@dataclass(frozen=True)
class Site:
    """Where the plant stands: degrees north and east (south and west negative)."""

    latitude_deg: float
    longitude_deg: float


@dataclass(frozen=True)
class Plane:
    """A fixed panel plane: tilt from horizontal, azimuth of its normal from north, clockwise."""

    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0  # facing south


def equator_facing(site: Site, tilt_deg: float = 30.0) -> Plane:
    """The usual fixed plane: facing south north of the equator, north south of it."""
    return Plane(tilt_deg, 180.0 if site.latitude_deg >= 0 else 0.0)


def sun_direction(site: Site, when: datetime) -> tuple[float, float, float]:
    """Unit vector toward the sun in (east, north, up) coordinates at the site."""
    utc = when.astimezone(UTC)
    days = 366 if utc.year % 4 == 0 and (utc.year % 100 != 0 or utc.year % 400 == 0) else 365
    hours = utc.hour + utc.minute / 60 + (utc.second + utc.microsecond / 1e6) / 3600
    g = 2 * math.pi / days * (utc.timetuple().tm_yday - 1 + (hours - 12) / 24)  # radians
    eqtime_min = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    true_solar_min = hours * 60 + eqtime_min + 4 * site.longitude_deg
    hour_angle = math.radians(true_solar_min / 4 - 180)
    lat = math.radians(site.latitude_deg)
    east = -math.cos(decl) * math.sin(hour_angle)
    north = math.cos(lat) * math.sin(decl) - math.sin(lat) * math.cos(decl) * math.cos(hour_angle)
    up = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(hour_angle)
    return east, north, up


def elevation_deg(site: Site, when: datetime) -> float:
    """The sun's height above the horizon (no refraction), degrees."""
    return math.degrees(math.asin(max(-1.0, min(1.0, sun_direction(site, when)[2]))))


def azimuth_deg(site: Site, when: datetime) -> float:
    """The sun's bearing from north, clockwise, degrees."""
    east, north, _ = sun_direction(site, when)
    return math.degrees(math.atan2(east, north)) % 360


def incidence_deg(site: Site, plane: Plane, when: datetime) -> float:
    """Angle between the sun and the plane's normal, degrees."""
    return math.degrees(math.acos(max(-1.0, min(1.0, _cos_incidence(site, plane, when)))))


def _cos_incidence(site: Site, plane: Plane, when: datetime) -> float:
    east, north, up = sun_direction(site, when)
    tilt, azimuth = math.radians(plane.tilt_deg), math.radians(plane.azimuth_deg)
    normal = (
        math.sin(tilt) * math.sin(azimuth),
        math.sin(tilt) * math.cos(azimuth),
        math.cos(tilt),
    )
    return east * normal[0] + north * normal[1] + up * normal[2]


def air_mass(zenith_deg: float) -> float:
    """Relative optical air mass, Kasten & Young (1989); finite down to the horizon."""
    return 1 / (
        math.cos(math.radians(zenith_deg)) + 0.50572 * math.pow(96.07995 - zenith_deg, -1.6364)
    )


def beam_w_m2(zenith_deg: float) -> float:
    """Clear-sky direct normal irradiance, Meinel & Meinel (1976); 0 below the horizon."""
    if zenith_deg >= 90:
        return 0.0
    return SOLAR_CONSTANT_W_M2 * math.pow(0.7, math.pow(air_mass(zenith_deg), 0.678))


def plane_w_m2(site: Site, plane: Plane, when: datetime) -> float:
    """Clear-sky irradiance on the plane: the beam at its incidence plus its view of the sky."""
    beam = beam_w_m2(90 - elevation_deg(site, when))
    sky_view = (1 + math.cos(math.radians(plane.tilt_deg))) / 2
    return beam * max(0.0, _cos_incidence(site, plane, when)) + DIFFUSE_SHARE * beam * sky_view


def sunrise(site: Site, day: date, tz: ZoneInfo) -> datetime | None:
    """When the sun's top edge rises on this local day (to the second); None: it does not."""
    # Stepping in UTC: a local day may last 23 or 25 hours.
    start = datetime.combine(day, time(0), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    minutes = [start + timedelta(minutes=m) for m in range((end - start) // timedelta(minutes=1))]
    up = [elevation_deg(site, t) >= SUNRISE_ELEVATION_DEG for t in minutes]
    for i in range(1, len(minutes)):
        if up[i] and not up[i - 1]:
            low, high = minutes[i - 1], minutes[i]
            while high - low > timedelta(seconds=1):  # bisect the crossing
                mid = low + (high - low) / 2
                if elevation_deg(site, mid) >= SUNRISE_ELEVATION_DEG:
                    high = mid
                else:
                    low = mid
            return high.astimezone(tz).replace(microsecond=0)
    return None
