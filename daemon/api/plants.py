"""GET /api/v1/plants, /api/v1/plants/{id}/production and /api/v1/plants/{id}/balances."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import Connection, func, select

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.daemon.api.models import BalancesOut, Error, PlantOut, ProductionOut
from heliod.daemon.api.responses import (
    NO_STORE,
    ApiError,
    ExactJSON,
    bad_parameter,
    only_params,
    wh,
)
from heliod.daemon.config import Config, Plant
from heliod.daemon.output import amount
from heliod.daemon.production import production
from heliod.rewards.times import parse_time, rfc3339, to_us

Step = Literal["5m", "1h", "1d"]
DEFAULT_SPAN = {"5m": timedelta(days=1), "1h": timedelta(days=1), "1d": timedelta(days=30)}
_TIME: dict[str, Any] = {"format": "date-time"}
PLANT_PATTERN = r"^[a-z0-9_-]{1,64}$"  # CONTRACT §2
PlantId = Annotated[str, Path(description="the plant's id", pattern=PLANT_PATTERN)]


def find_plant(config: Config, plant_id: str) -> Plant:
    """The configured plant, or 404."""
    for plant in config.plants:
        if plant.id == plant_id:
            return plant
    raise ApiError(404, f"unknown plant {plant_id!r}")


def _money(units: int, decimals: int) -> dict[str, Any]:
    return {"units": units, "amount": amount(units, decimals)}


def _minted(conn: Connection) -> dict[str, tuple[int, int]]:
    """plant -> (Σ units minted, undistributed after its latest mint)."""
    m = t.mints.c
    out: dict[str, tuple[int, int]] = {}
    last: dict[str, int] = {}
    for plant, k, units, after in conn.execute(
        select(m.plant, m.mwh_index, m.units, m.undistributed_after)
    ):
        total, undistributed = out.get(plant, (0, 0))
        if k > last.get(plant, 0):
            last[plant], undistributed = k, int(after)
        out[plant] = (total + int(units), undistributed)
    return out


def plant_summary(conn: Connection, plant: Plant, minted_units: int) -> dict[str, Any]:
    """One item of GET /api/v1/plants."""
    state = repo.load_state(conn).plants.get(plant.id)
    d = t.devices.c
    last = conn.execute(
        select(func.max(d.last_ts_us)).where(d.device.in_([x.id for x in plant.devices]))
    ).scalar()
    return {
        "id": plant.id,
        "name": plant.name,
        "capacity_kw": plant.capacity_kw,
        "energy_wh": wh(state.e_mwh if state else 0),
        "mwh_completed": state.mwh_completed if state else 0,
        "minted": _money(minted_units, plant.reward.decimals),
        "last_reading_at": None if last is None else rfc3339(int(last)),
    }


def plants_router(store: Store, config: Config, clock_us: Callable[[], int]) -> APIRouter:
    """The plant routes (the caller adds the token dependency)."""
    router = APIRouter()
    plant_errors: dict[int | str, dict[str, Any]] = {
        404: {"model": Error, "description": "unknown plant"}
    }

    @router.get(
        "/plants",
        response_model=list[PlantOut],
        dependencies=[Depends(only_params())],
        summary="Plants and their totals",
    )
    def plants() -> ExactJSON:
        with store.read() as conn:
            minted = _minted(conn)
            body = [plant_summary(conn, p, minted.get(p.id, (0, 0))[0]) for p in config.plants]
        return ExactJSON(body, headers=NO_STORE)

    @router.get(
        "/plants/{plant_id}/production",
        response_model=ProductionOut,
        responses=plant_errors,
        dependencies=[Depends(only_params("from", "to", "step"))],
        summary="Accounted energy per step",
        description=(
            "`energy_wh` is the increase of E in [t, t + step), each Δ at its P's timestamp; "
            "`avg_power_w` = energy_wh × 3600 / the step in seconds. `from` and `to` are "
            "RFC 3339 (no offset: the plant's timezone); `to` defaults to now and `from` to "
            "`to` − 1 day (− 30 days for `1d`). Days start at the plant's local midnight. "
            "At most 10,000 points."
        ),
    )
    def plant_production(
        plant_id: PlantId,
        from_: Annotated[
            str | None, Query(alias="from", max_length=64, json_schema_extra=_TIME)
        ] = None,
        to: Annotated[str | None, Query(max_length=64, json_schema_extra=_TIME)] = None,
        step: Step = "1h",
    ) -> ExactJSON:
        plant = find_plant(config, plant_id)
        to_at = _time("to", to, plant) if to else clock_us()
        from_at = (
            _time("from", from_, plant)
            if from_
            else to_at - DEFAULT_SPAN[step] // timedelta(microseconds=1)
        )
        if to_at <= from_at:
            raise bad_parameter("to", "must be after `from`")
        try:
            with store.read() as conn:
                points = production(conn, plant.id, None, from_at, to_at, step=step, tz=plant.tz)
        except (ValueError, OverflowError) as exc:
            raise bad_parameter("from/to/step", str(exc)) from None
        body = {"plant": plant.id, "step": step, "points": [p.as_json() for p in points]}
        return ExactJSON(body, headers=NO_STORE)

    @router.get(
        "/plants/{plant_id}/balances",
        response_model=BalancesOut,
        responses=plant_errors,
        dependencies=[Depends(only_params())],
        summary="Balances of every backer who ever held a share",
    )
    def plant_balances(plant_id: PlantId) -> ExactJSON:
        plant = find_plant(config, plant_id)
        decimals = plant.reward.decimals
        with store.read() as conn:
            held = repo.held_balances(conn, plant.id)
            undistributed = repo.undistributed_of(conn, plant.id)
        body = {
            "plant": plant.id,
            "symbol": plant.reward.symbol,
            "decimals": decimals,
            "undistributed": _money(undistributed, decimals),
            "balances": [{"backer": b, **_money(u, decimals)} for b, u in sorted(held.items())],
        }
        return ExactJSON(body, headers=NO_STORE)

    return router


def _time(name: str, text: str, plant: Plant) -> int:
    try:
        return to_us(parse_time(text, plant.tz))
    except (ValueError, OverflowError) as exc:
        raise bad_parameter(name, str(exc)) from None
