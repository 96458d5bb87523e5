"""The production route's points (docs/platform.md) and the measured power curve, from rollups.

`energy_wh` of a point is the increase of the plant's accounted energy E in [t, t + step):
the accountant's energy rollups (each Δ at its P's timestamp) summed over the step. For
the plant as a whole at `1h` and `1d`, when every step starts on a whole UTC hour (the
plant's offset is whole hours, the days' midnights too), they are its hourly sums
(`energy_hourly`, 24 rows a day); otherwise the 5-minute buckets of its devices.
`avg_power_w` = energy_wh × 3600 / the step's length in seconds, where a day is from one
local midnight to the next (23 or 25 hours on the days clocks change).

Steps: `5m` and `1h` follow UTC instants from the local boundary at or before `from`
(5 minutes and one hour are the same everywhere for zones offset by whole quarters of an
hour, i.e. every zone in use), `1d` follows the plant's local midnights. Points run from
the step holding `from` to the last step starting before `to`; at most 10,000.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from heliod.adapters.store import rollups
from heliod.rewards.times import from_us, rfc3339, to_us
from heliod.rewards.units import mwh_to_wh, quantize

STEPS_S = {"5m": 300, "1h": 3600, "1d": 86400}
MAX_POINTS = 10_000
_US = 1_000_000
_HOUR_US = 3600 * _US  # energy_hourly rows start on whole UTC hours


@dataclass(frozen=True, slots=True)
class ProductionPoint:
    """One step of the production route."""

    t_us: int
    length_s: int
    energy_wh: Decimal
    avg_power_w: Decimal

    def as_json(self) -> dict[str, Any]:
        """{"t", "energy_wh", "avg_power_w"} with exact decimals (docs/platform.md)."""
        return {
            "t": rfc3339(self.t_us),
            "energy_wh": self.energy_wh,
            "avg_power_w": self.avg_power_w,
        }


@dataclass(frozen=True, slots=True)
class PowerPoint:
    """Mean measured power of one step: Σ over devices of each device's mean `power_w`."""

    t_us: int
    power_w: Decimal | None  # None: no device reported power in the step


def step_starts(from_us: int, to_us: int, step: str, tz: tzinfo) -> list[int]:
    """Step boundaries: the start of every point, then the end of the last one."""
    if step not in STEPS_S:
        raise ValueError(f"step must be one of {', '.join(STEPS_S)}, got {step!r}")
    if to_us <= from_us:
        raise ValueError("`to` must be after `from`")
    if step == "1d":
        return _local_days(from_us, to_us, tz)
    size = STEPS_S[step] * _US
    local = from_us_local(from_us, tz)
    if step == "1h":
        floor = local.replace(minute=0, second=0, microsecond=0)
    else:
        floor = local.replace(minute=local.minute - local.minute % 5, second=0, microsecond=0)
    first = to_us_aware(floor)
    count = -(-(to_us - first) // size)
    _check_count(count)
    return [first + i * size for i in range(count + 1)]


def _local_days(from_us: int, to_us: int, tz: tzinfo) -> list[int]:
    day = from_us_local(from_us, tz).date()
    last = from_us_local(to_us - 1, tz).date()
    _check_count((last - day).days + 1)
    starts = []
    while day <= last + timedelta(days=1):
        starts.append(_midnight(day, tz))
        day += timedelta(days=1)
    return starts


def _midnight(day: date, tz: tzinfo) -> int:
    # fold=0: where midnight does not exist (clocks jump at 00:00) zoneinfo takes the
    # offset before the jump, which is the instant the local day actually starts.
    return to_us(datetime(day.year, day.month, day.day, tzinfo=tz))


def _check_count(count: int) -> None:
    if count > MAX_POINTS:
        raise ValueError(f"{count} points requested, at most {MAX_POINTS}: use a larger step")


def from_us_local(us: int, tz: tzinfo) -> datetime:
    """The instant as an aware local time (fold set in the repeated hour)."""
    return from_us(us).astimezone(tz)


def to_us_aware(ts: datetime) -> int:
    """µs of an aware datetime (local wall times keep their fold)."""
    return to_us(ts.astimezone(UTC))


def production(
    conn: Connection,
    plant: str,
    device_ids: Sequence[str] | None,
    from_us: int,
    to_us: int,
    *,
    step: str,
    tz: tzinfo,
) -> list[ProductionPoint]:
    """A plant's production points (its energy devices, or only `device_ids`)."""
    bounds = step_starts(from_us, to_us, step, tz)
    sums = [0] * (len(bounds) - 1)
    if device_ids is None and step != "5m" and all(b % _HOUR_US == 0 for b in bounds):
        rows = rollups.energy_hours(conn, plant, bounds[0], bounds[-1])
    else:  # a half-hour zone, 5-minute steps or some devices only
        rows = rollups.energy_buckets(conn, plant, device_ids, bounds[0], bounds[-1])
    for start, e_mwh in rows:
        sums[bisect.bisect_right(bounds, start) - 1] += e_mwh
    points = []
    for i, e_mwh in enumerate(sums):
        length_s = (bounds[i + 1] - bounds[i]) // _US
        energy_wh = mwh_to_wh(e_mwh)
        points.append(
            ProductionPoint(bounds[i], length_s, energy_wh, quantize(energy_wh * 3600 / length_s))
        )
    return points


def measured_power(
    conn: Connection,
    device_ids: Sequence[str],
    from_us: int,
    to_us: int,
    *,
    step: str,
    tz: tzinfo,
) -> list[PowerPoint]:
    """Mean measured power per step from the 5-minute power rollups (for the power curve)."""
    bounds = step_starts(from_us, to_us, step, tz)
    acc: list[dict[str, list[int]]] = [{} for _ in range(len(bounds) - 1)]
    for start, device, sum_mw, n in rollups.power_buckets(conn, device_ids, bounds[0], bounds[-1]):
        per = acc[bisect.bisect_right(bounds, start) - 1].setdefault(device, [0, 0])
        per[0] += sum_mw
        per[1] += n
    points = []
    for i, devices in enumerate(acc):
        if not devices:
            points.append(PowerPoint(bounds[i], None))
            continue
        total = sum((Decimal(s) / n for s, n in devices.values()), Decimal(0))
        points.append(PowerPoint(bounds[i], quantize(total / 1000)))
    return points
