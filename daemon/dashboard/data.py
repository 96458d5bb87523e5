"""What the dashboard shows, read from the store in one snapshot: the body of data.json."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.adapters.store.rollups import power_buckets
from heliod.daemon.config import Config
from heliod.daemon.config.plants import Plant
from heliod.daemon.output import amount
from heliod.daemon.production import production
from heliod.rewards.times import from_us, rfc3339, to_us
from heliod.rewards.units import mwh_to_wh

DAYS = 30  # bars of energy per local day, today included
STALE_AFTER_POLLS = 3  # §6: a device is stale after 3 poll intervals without a reading
MWH_IN_MWH_UNITS = 10**9  # 1 MWh in integer mWh (the store's energy unit)

HealthProvider = Callable[[], Mapping[str, Any]]  # returns the body of GET /healthz


def _local_midnight(day: date, tz: ZoneInfo) -> int:
    return int(to_us(datetime.combine(day, time(), tzinfo=tz)))


def _power_w(sum_mw: int, n: int) -> Fraction:
    return Fraction(sum_mw, n * 1000)


def _decimal_text(value: Fraction) -> str:
    """A display value rounded half to even to 0.001 (never used in accounting)."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(Decimal("0.001")))


def power_today(
    conn: Connection, devices: Sequence[str], start_us: int, end_us: int
) -> list[dict[str, str]]:
    """Average power of the devices per 5-minute bucket of today: ≤ 300 points (a 25 h day)."""
    per_bucket: dict[int, Fraction] = {}
    for start, _device, sum_mw, n in power_buckets(conn, devices, start_us, end_us):
        # The plant's power in a bucket is the sum of each device's average in it.
        per_bucket[start] = per_bucket.get(start, Fraction(0)) + _power_w(sum_mw, n)
    return [
        {"t": rfc3339(start), "power_w": _decimal_text(w)}
        for start, w in sorted(per_bucket.items())
    ]


def energy_per_day(
    conn: Connection, plant: str, days: Sequence[date], tz: ZoneInfo
) -> list[dict[str, str]]:
    """Accepted energy (E increments, at P's time) per local day, zero days included: the
    production route's daily steps (from the plant's hourly rollup where local midnights
    fall on whole hours, else from the 5-minute buckets)."""
    start = _local_midnight(days[0], tz)
    end = _local_midnight(days[-1] + timedelta(days=1), tz)
    points = production(conn, plant, None, start, end, step="1d", tz=tz)
    return [
        {"date": d.isoformat(), "t": rfc3339(p.t_us), "energy_wh": str(p.energy_wh)}
        for d, p in zip(days, points, strict=True)
    ]


def balances(conn: Connection, plant: str, decimals: int) -> list[dict[str, Any]]:
    """Every backer that ever held a share, with their credited units (0 included)."""
    return [
        {"backer": b, "units": u, "amount": amount(u, decimals)}
        for b, u in sorted(repo.held_balances(conn, plant).items())
    ]


def _minted(conn: Connection, plant: str) -> tuple[int, int]:
    """(Σ units minted, undistributed after the last mint) of a plant."""
    m = t.mints.c
    total = 0
    undistributed = 0
    last = -1
    for k, units, after in conn.execute(
        select(m.mwh_index, m.units, m.undistributed_after).where(m.plant == plant)
    ):
        total += int(units)
        if k > last:
            last, undistributed = k, int(after)
    return total, undistributed


def device_health(
    conn: Connection, plant: Plant, now_us: int, health: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Each device's state: from /healthz when a provider is wired, else from the store."""
    known = health.get("devices", {}) if health is not None else {}
    d = t.devices.c
    last = {
        row.device: row.last_ts_us
        for row in conn.execute(
            select(d.device, d.last_ts_us).where(d.device.in_([x.id for x in plant.devices]))
        )
    }
    out: dict[str, dict[str, Any]] = {}
    for device in plant.devices:
        if device.id in known:
            out[device.id] = dict(known[device.id])
            continue
        ts = last.get(device.id)
        window = STALE_AFTER_POLLS * device.expected_interval // timedelta(microseconds=1)
        state = "ok" if ts is not None and now_us - ts <= window else "stale"
        out[device.id] = {
            "state": state,
            "last_reading_at": None if ts is None else rfc3339(ts),
        }
    return out


def plant_data(
    conn: Connection, plant: Plant, now_us: int, health: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One plant's block of data.json."""
    state = repo.load_state(conn).plants.get(plant.id)
    e_mwh = state.e_mwh if state is not None else 0
    completed = state.mwh_completed if state is not None else 0
    reward = plant.reward
    minted, undistributed = _minted(conn, plant.id)
    tz = plant.tz
    today = from_us(now_us).astimezone(tz).date()
    midnight = _local_midnight(today, tz)
    tomorrow = _local_midnight(today + timedelta(days=1), tz)
    days = [today - timedelta(days=i) for i in range(DAYS - 1, -1, -1)]
    d = t.devices.c
    last_ts = conn.execute(
        select(func.max(d.last_ts_us)).where(d.device.in_([x.id for x in plant.devices]))
    ).scalar()
    return {
        "id": plant.id,
        "name": plant.name,
        "timezone": plant.timezone,
        "locale": getattr(plant, "locale", None),  # not in CONTRACT §2: the page then picks
        "capacity_kw": str(plant.capacity_kw),
        "energy_wh": str(mwh_to_wh(e_mwh)),
        "mwh_completed": completed,
        # (E − 10^6 × mwh_completed) / 10^6 with E in Wh, exact (§7)
        "next_mwh_progress": str(Decimal(e_mwh - completed * MWH_IN_MWH_UNITS).scaleb(-9)),
        "minted": {
            "units": minted,
            "amount": amount(minted, reward.decimals),
            "symbol": reward.symbol,
            "decimals": reward.decimals,
        },
        "undistributed": {
            "units": undistributed,
            "amount": amount(undistributed, reward.decimals),
        },
        "last_reading_at": None if last_ts is None else rfc3339(int(last_ts)),
        "power_today": {
            "from": rfc3339(midnight),
            "to": rfc3339(tomorrow),
            # Every device's power, as in the MQTT state: OpenDTU and Shelly report
            # power on a device that is not an energy device (docs/mqtt.md).
            "points": power_today(conn, [d.id for d in plant.devices], midnight, tomorrow),
        },
        "energy_days": energy_per_day(conn, plant.id, days, tz),
        "balances": balances(conn, plant.id, reward.decimals),
        "devices": device_health(conn, plant, now_us, health),
    }


def dashboard_data(
    store: Store, config: Config, now_us: int, health: HealthProvider | None = None
) -> dict[str, Any]:
    """The whole body of GET /dashboard/data.json, from one read snapshot."""
    report = health() if health is not None else None
    with store.read() as conn:
        plants = [plant_data(conn, p, now_us, report) for p in config.plants]
    return {"generated_at": rfc3339(now_us), "refresh_seconds": 10, "plants": plants}
