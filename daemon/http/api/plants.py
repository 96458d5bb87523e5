"""GET /api/v1/plants, /api/v1/plants/{id}/production, …/balances and …/milestones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from heliod.adapters.store import Store
from heliod.daemon.http.api.models import (
    BalancesOut,
    Error,
    MilestonesOut,
    PlantOut,
    ProductionOut,
)
from heliod.daemon.http.api.responses import (
    NO_STORE,
    ApiError,
    ExactJSON,
    bad_parameter,
    only_params,
)
from heliod.daemon.read.goals import milestones_of
from heliod.daemon.read.plants import Minted, PlantView, minted, plant_summary, view_balances
from heliod.daemon.read.production import production
from heliod.rewards.times import parse_time, to_us

Step = Literal["5m", "1h", "1d"]
DEFAULT_SPAN = {"5m": timedelta(days=1), "1h": timedelta(days=1), "1d": timedelta(days=30)}
_TIME: dict[str, Any] = {"format": "date-time"}
PLANT_PATTERN = r"^[a-z0-9_-]{1,64}$"  # docs/configuration.md, plants[].id
PlantId = Annotated[str, Path(description="the plant's id", pattern=PLANT_PATTERN)]


def find_plant(plants: Sequence[PlantView], plant_id: str) -> PlantView:
    """The configured plant, or 404."""
    for plant in plants:
        if plant.id == plant_id:
            return plant
    raise ApiError(404, f"unknown plant {plant_id!r}")


def plants_router(
    store: Store, views: Sequence[PlantView], clock_us: Callable[[], int]
) -> APIRouter:
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
            totals = minted(conn)
            body = [plant_summary(conn, p, totals.get(p.id, Minted()).units) for p in views]
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
        plant = find_plant(views, plant_id)
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
        summary="Balances of every backer who held a share at some mint",
    )
    def plant_balances(plant_id: PlantId) -> ExactJSON:
        plant = find_plant(views, plant_id)
        with store.read() as conn:
            body = view_balances(conn, plant)
        return ExactJSON(body, headers=NO_STORE)

    @router.get(
        "/plants/{plant_id}/milestones",
        response_model=MilestonesOut,
        responses=plant_errors,
        dependencies=[Depends(only_params())],
        summary="Milestones and challenges with their status",
        description=(
            "Every configured milestone (reached by the mint of its MWh number) and challenge "
            "(reached by the mint of goal_mwh if completed by the deadline, else missed), "
            "as docs/milestones.md explains. Their events are pushed like mints."
        ),
    )
    def plant_milestones(plant_id: PlantId) -> ExactJSON:
        plant = find_plant(views, plant_id)
        with store.read() as conn:
            body = milestones_of(conn, plant)
        return ExactJSON(body, headers=NO_STORE)

    return router


def _time(name: str, text: str, plant: PlantView) -> int:
    try:
        return to_us(parse_time(text, plant.tz))
    except (ValueError, OverflowError) as exc:
        raise bad_parameter(name, str(exc)) from None
