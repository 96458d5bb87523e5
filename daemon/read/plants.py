"""Plants as the faces show them: totals, minted units and balances (docs/platform.md).

The API, the dashboard, the metrics and the CLI all read a plant's figures here, so the
minted units of a plant are summed in one place and "every backer who held a share in
force at some mint" means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.rewards.goals import PlantGoals
from heliod.rewards.impact import ImpactRules, backer_co2_kg, plant_impact
from heliod.rewards.ledger import LedgerState
from heliod.rewards.times import rfc3339
from heliod.rewards.units import amount, mwh_to_wh

MWH_IN_MWH_UNITS = 10**9  # one MWh in the store's integer mWh


@dataclass(frozen=True)
class PlantView:
    """What the faces show of a configured plant (built from the configuration at start)."""

    id: str
    name: str
    timezone: str
    capacity_kw: Decimal
    symbol: str
    decimals: int
    devices: dict[str, int]  # device id -> the time between its readings, µs
    energy_devices: tuple[str, ...]
    units_per_mwh: int = 1  # U: token units minted per MWh
    impact: ImpactRules | None = None  # [plants.impact]; None: no impact figures
    goals: PlantGoals | None = None  # None: the default milestones, no challenges
    log_origin: str = ""  # the log's origin (docs/verification.md)
    log_vkey: str = ""  # its verifier key; "": none configured

    @property
    def tz(self) -> ZoneInfo:
        """The plant's timezone."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Minted:
    """A plant's mints so far."""

    mints: int = 0
    units: int = 0
    undistributed: int = 0  # after its latest mint


def minted(conn: Connection) -> dict[str, Minted]:
    """plant -> its mints, units minted (summed exactly: they may exceed 64 bits) and
    undistributed balance after its latest mint."""
    m = t.mints.c
    out: dict[str, Minted] = {}
    last: dict[str, int] = {}
    for plant, k, units, after in conn.execute(
        select(m.plant, m.mwh_index, m.units, m.undistributed_after)
    ):
        before = out.get(plant, Minted())
        undistributed = before.undistributed
        if k > last.get(plant, 0):
            last[plant], undistributed = k, int(after)
        out[plant] = Minted(before.mints + 1, before.units + int(units), undistributed)
    return out


def money(units: int, decimals: int) -> dict[str, Any]:
    """`{"units", "amount"}` of a count of token units."""
    return {"units": units, "amount": amount(units, decimals)}


def balances(
    conn: Connection,
    plant: str,
    symbol: str,
    decimals: int,
    *,
    impact: ImpactRules | None = None,
    units_per_mwh: int = 1,
) -> dict[str, Any]:
    """A plant's balances: every backer who held a share in force at some mint (zeros
    included), and the undistributed balance (`GET /api/v1/plants/{id}/balances`,
    `heliod balances`).

    With the plant's impact rules, each backer's share of the CO2 avoided too, and the
    factor with its source (docs/milestones.md, "Impact").
    """
    held = repo.balances_of(conn, plant)
    rows = []
    for backer, units in sorted(held.items()):
        row: dict[str, Any] = {"backer": backer, **money(units, decimals)}
        if impact is not None:
            row["co2_avoided_kg"] = backer_co2_kg(impact, units, units_per_mwh)
        rows.append(row)
    body = {
        "plant": plant,
        "symbol": symbol,
        "decimals": decimals,
        "undistributed": money(repo.undistributed_of(conn, plant), decimals),
        "balances": rows,
    }
    if impact is not None:
        body["impact"] = {"co2_g_per_kwh": impact.co2_g_per_kwh, "source": impact.source}
    return body


def view_balances(conn: Connection, plant: PlantView) -> dict[str, Any]:
    """`balances` of a configured plant, with its token and impact rules."""
    return balances(
        conn,
        plant.id,
        plant.symbol,
        plant.decimals,
        impact=plant.impact,
        units_per_mwh=plant.units_per_mwh,
    )


def impact_figures(impact: ImpactRules | None, e_mwh: int) -> dict[str, Any] | None:
    """`{"co2_avoided_kg", "households", "co2_g_per_kwh", "source"}` for an energy E in
    mWh, exact decimals; None without [plants.impact]."""
    if impact is None:
        return None
    figures = plant_impact(impact, e_mwh)
    return {
        "co2_avoided_kg": figures.co2_avoided_kg,
        "households": figures.households,
        "co2_g_per_kwh": impact.co2_g_per_kwh,
        "source": impact.source,
    }


def last_reading_us(conn: Connection, devices: list[str]) -> int | None:
    """When the newest reading of these devices was taken (None: none yet)."""
    d = t.devices.c
    last = conn.execute(select(func.max(d.last_ts_us)).where(d.device.in_(devices))).scalar()
    return None if last is None else int(last)


def energy_of(state: LedgerState, plant: str) -> tuple[int, int]:
    """(E in mWh, MWh completed) of a plant."""
    energy = state.plants.get(plant)
    return (energy.e_mwh, energy.mwh_completed) if energy is not None else (0, 0)


def next_mwh_progress(e_mwh: int, completed: int) -> Decimal:
    """(E − 10^6 × mwh_completed) / 10^6 with E in Wh, exact."""
    return Decimal(e_mwh - completed * MWH_IN_MWH_UNITS).scaleb(-9)


def plant_summary(conn: Connection, plant: PlantView, minted_units: int) -> dict[str, Any]:
    """One item of GET /api/v1/plants."""
    e_mwh, completed = energy_of(repo.load_state(conn), plant.id)
    last = last_reading_us(conn, list(plant.devices))
    return {
        "id": plant.id,
        "name": plant.name,
        "capacity_kw": plant.capacity_kw,
        "energy_wh": mwh_to_wh(e_mwh),
        "mwh_completed": completed,
        "minted": money(minted_units, plant.decimals),
        "last_reading_at": None if last is None else rfc3339(last),
        "impact": impact_figures(plant.impact, e_mwh),
    }
