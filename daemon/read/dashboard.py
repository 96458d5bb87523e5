"""What the dashboard shows, read from the store in one snapshot: the body of data.json.

The page and what it shows are described in docs/dashboard.md.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from heliod.adapters.store import Store, log_repo
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.adapters.store.rollups import power_buckets
from heliod.daemon.read.goals import dashboard_goals
from heliod.daemon.read.plants import (
    Minted,
    PlantView,
    energy_of,
    last_reading_us,
    minted,
    money,
    next_mwh_progress,
    view_balances,
)
from heliod.daemon.read.production import production
from heliod.rewards.clocks import is_ahead
from heliod.rewards.freshness import is_stale
from heliod.rewards.times import from_us, rfc3339, to_us
from heliod.rewards.units import mwh_to_wh

DAYS = 30  # bars of energy per local day, today included


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


def device_health(
    conn: Connection, plant: PlantView, now_us: int, health: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Each device's state: from /healthz when a provider is wired, else from the store."""
    known = health.get("devices", {}) if health is not None else {}
    d = t.devices.c
    last = {
        row.device: row.last_ts_us
        for row in conn.execute(
            select(d.device, d.last_ts_us).where(d.device.in_(list(plant.devices)))
        )
    }
    out: dict[str, dict[str, Any]] = {}
    for device, interval_us in plant.devices.items():
        if device in known:
            seen = known[device]
            out[device] = {"state": seen["state"], "last_reading_at": seen["last_reading_at"]}
            continue
        ts = last.get(device)
        state = "ok" if ts is not None and not is_stale(ts, now_us, interval_us) else "stale"
        if is_ahead(ts, now_us):
            state = "clock"
        out[device] = {
            "state": state,
            "last_reading_at": None if ts is None else rfc3339(ts),
        }
    return out


def plant_data(
    conn: Connection,
    plant: PlantView,
    totals: Minted,
    now_us: int,
    health: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One plant's block of data.json."""
    e_mwh, completed = energy_of(repo.load_state(conn), plant.id)
    tz = plant.tz
    today = from_us(now_us).astimezone(tz).date()
    midnight = _local_midnight(today, tz)
    tomorrow = _local_midnight(today + timedelta(days=1), tz)
    days = [today - timedelta(days=i) for i in range(DAYS - 1, -1, -1)]
    last_ts = last_reading_us(conn, list(plant.devices))
    return {
        "id": plant.id,
        "name": plant.name,
        "timezone": plant.timezone,
        "locale": None,  # no configuration key sets it: the page follows the browser
        "capacity_kw": str(plant.capacity_kw),
        "energy_wh": str(mwh_to_wh(e_mwh)),
        "mwh_completed": completed,
        "next_mwh_progress": str(next_mwh_progress(e_mwh, completed)),
        "minted": {
            **money(totals.units, plant.decimals),
            "symbol": plant.symbol,
            "decimals": plant.decimals,
        },
        "undistributed": money(totals.undistributed, plant.decimals),
        "last_reading_at": None if last_ts is None else rfc3339(last_ts),
        "power_today": {
            "from": rfc3339(midnight),
            "to": rfc3339(tomorrow),
            # Every device's power, as in the MQTT state: OpenDTU and Shelly report
            # power on a device that is not an energy device (docs/mqtt.md).
            "points": power_today(conn, list(plant.devices), midnight, tomorrow),
        },
        "energy_days": energy_per_day(conn, plant.id, days, tz),
        "balances": [
            {k: str(v) if k == "co2_avoided_kg" else v for k, v in b.items()}
            for b in view_balances(conn, plant)["balances"]
        ],
        "devices": device_health(conn, plant, now_us, health),
        # impact, milestones, next_milestone, challenges, banner (docs/milestones.md)
        **dashboard_goals(conn, plant, e_mwh, completed, now_us),
        "log": _log(conn, plant),
    }


def _log(conn: Connection, plant: PlantView) -> dict[str, Any] | None:
    """The verifiable ledger's block (docs/verification.md): the verifier key and the
    newest checkpoint, its size and root; None without a key."""
    if not plant.log_vkey:
        return None
    newest = log_repo.newest_checkpoint(conn, plant.id)
    return {
        "origin": plant.log_origin,
        "vkey": plant.log_vkey,
        "checkpoint": None if newest is None else newest.note,
        "tree_size": 0 if newest is None else newest.size,
        "root": None if newest is None else base64.b64encode(newest.root).decode("ascii"),
    }


def dashboard_data(
    store: Store,
    plants: Sequence[PlantView],
    now_us: int,
    health: Callable[[], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole body of GET /dashboard/data.json, from one read snapshot."""
    report = health() if health is not None else None
    with store.read() as conn:
        totals = minted(conn)
        body = [plant_data(conn, p, totals.get(p.id, Minted()), now_us, report) for p in plants]
    return {"generated_at": rfc3339(now_us), "refresh_seconds": 10, "plants": body}
