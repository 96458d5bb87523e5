"""The verifiable ledger's routes (docs/verification.md): the verifier key, the newest
checkpoint, the log's entries, consistency proofs and a backer's proof bundle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse

from heliod.adapters.store import Store
from heliod.daemon.http.api.models import (
    BundleOut,
    ConsistencyOut,
    Error,
    LogEntriesOut,
    LogKeyOut,
)
from heliod.daemon.http.api.plants import PlantId, find_plant
from heliod.daemon.http.api.responses import NO_STORE, ApiError, ExactJSON, only_params
from heliod.daemon.read import tlog
from heliod.daemon.read.plants import PlantView
from heliod.rewards.register_rows import BACKER_ID

BackerId = Annotated[str, Path(description="the backer's id", pattern=BACKER_ID.pattern)]
Size = Annotated[int, Query(ge=0, le=2**62)]
_ERROR: dict[str, Any] = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
}
TEXT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "a bad or unknown parameter (the message names it)"} | _ERROR,
    401: {"description": "no valid bearer token"} | _ERROR,
    404: {"description": "unknown plant, or no mint yet"} | _ERROR,
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
}


def log_router(store: Store, views: Sequence[PlantView]) -> APIRouter:
    """The log routes (the caller adds the token dependency)."""
    router = APIRouter()
    errors: dict[int | str, dict[str, Any]] = {
        404: {"model": Error, "description": "unknown plant, or not in the log yet"}
    }

    @router.get(
        "/plants/{plant_id}/log/key",
        response_model=LogKeyOut,
        responses=errors,
        dependencies=[Depends(only_params())],
        summary="The plant's log origin and verifier key",
    )
    def log_key(plant_id: PlantId) -> ExactJSON:
        plant = find_plant(views, plant_id)
        if not plant.log_vkey:
            raise ApiError(404, f"{plant.id}: no log key configured")
        return ExactJSON({"origin": plant.log_origin, "vkey": plant.log_vkey}, headers=NO_STORE)

    @router.get(
        "/plants/{plant_id}/log/checkpoint",
        response_class=PlainTextResponse,
        responses=TEXT_ERRORS,  # errors stay {"error"} JSON, also where the answer is text
        dependencies=[Depends(only_params())],
        summary="The newest signed checkpoint (a C2SP signed note)",
    )
    def log_checkpoint(plant_id: PlantId) -> PlainTextResponse:
        plant = find_plant(views, plant_id)
        with store.read() as conn:
            note = tlog.newest_checkpoint(conn, plant.id)
        if note is None:
            raise ApiError(404, f"{plant.id} has no mint yet: its log is empty")
        return PlainTextResponse(note, headers=NO_STORE)

    @router.get(
        "/plants/{plant_id}/log/entries",
        response_model=LogEntriesOut,
        responses=errors,
        dependencies=[Depends(only_params("from", "limit"))],
        summary="Leaves of the log from index `from`, at most `limit` (≤ 1000)",
    )
    def log_entries(
        plant_id: PlantId,
        from_: Annotated[int, Query(alias="from", ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=tlog.MAX_ENTRIES)] = 100,
    ) -> ExactJSON:
        plant = find_plant(views, plant_id)
        with store.read() as conn:
            body = tlog.entries(conn, plant.id, from_, limit)
        return ExactJSON(body, headers=NO_STORE)

    @router.get(
        "/plants/{plant_id}/log/consistency",
        response_model=ConsistencyOut,
        responses=errors,
        dependencies=[Depends(only_params("from", "to"))],
        summary="Consistency proof from size `from` to size `to` (default: the newest)",
    )
    def log_consistency(
        plant_id: PlantId,
        from_: Annotated[int, Query(alias="from", ge=1, le=2**62)],
        to: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    ) -> ExactJSON:
        plant = find_plant(views, plant_id)
        try:
            with store.read() as conn:
                body = tlog.consistency(conn, plant.id, from_, to)
        except tlog.LogUnavailable as e:
            raise ApiError(404, str(e)) from None
        return ExactJSON(body, headers=NO_STORE)

    @router.get(
        "/plants/{plant_id}/backers/{backer}/proof",
        response_model=BundleOut,
        responses=errors,
        dependencies=[Depends(only_params("since"))],
        summary="The backer's proof bundle over every mint (check it with GET /verify.py)",
    )
    def backer_proof(plant_id: PlantId, backer: BackerId, since: Size | None = None) -> ExactJSON:
        plant = find_plant(views, plant_id)
        try:
            with store.read() as conn:
                body = tlog.bundle(conn, plant.id, backer, plant.log_origin, since)
        except tlog.LogUnavailable as e:
            raise ApiError(404, str(e)) from None
        return ExactJSON(body, headers=NO_STORE)

    return router
