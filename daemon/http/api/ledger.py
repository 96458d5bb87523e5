"""GET /api/v1/credits, /api/v1/mints and /api/v1/anomalies: id-ordered pages.

The pages are read by daemon/read/ledger.py. The cursor is the id of the last item
returned (as a string); `next` is null on the last page, and a client that wants later
rows polls again with the id of the last item it holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from heliod.adapters.store import Store
from heliod.daemon.http.api.models import AnomalyPage, CreditPage, Error, MintPage
from heliod.daemon.http.api.plants import PLANT_PATTERN, find_plant
from heliod.daemon.http.api.responses import NO_STORE, ExactJSON, bad_parameter, only_params
from heliod.daemon.read.ledger import anomalies_page, credits_page, mints_page
from heliod.daemon.read.plants import PlantView

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR = re.compile(r"[0-9]{1,18}")

After = Annotated[
    str | None,
    Query(
        description="the `next` of the previous page (the id of its last item)",
        pattern=r"^[0-9]{1,18}$",
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]


def parse_cursor(text: str | None) -> int:
    """The id a cursor stands for (0: from the start); 400 for anything else."""
    if text is None or text == "":
        return 0
    if not _CURSOR.fullmatch(text):
        raise bad_parameter("after", f"not a cursor of this API: {text[:40]!r}")
    return int(text)


def ledger_router(store: Store, views: Sequence[PlantView]) -> APIRouter:
    """The paged ledger routes (the caller adds the token dependency)."""
    router = APIRouter()
    known = {p.id: (p.symbol, p.decimals) for p in views}

    paged = [Depends(only_params("after", "limit"))]

    @router.get(
        "/credits", response_model=CreditPage, dependencies=paged, summary="Credits, in id order"
    )
    def credits(after: After = None, limit: Limit = DEFAULT_LIMIT) -> ExactJSON:
        start = parse_cursor(after)
        with store.read() as conn:
            items, nxt = credits_page(conn, known, start, limit)
        return ExactJSON({"items": items, "next": nxt}, headers=NO_STORE)

    @router.get(
        "/mints",
        response_model=MintPage,
        dependencies=[Depends(only_params("plant", "after", "limit"))],
        responses={404: {"model": Error, "description": "unknown plant"}},
        summary="Mints, in id order",
    )
    def mints(
        plant: Annotated[
            str | None, Query(description="only this plant's mints", pattern=PLANT_PATTERN)
        ] = None,
        after: After = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> ExactJSON:
        start = parse_cursor(after)
        if plant is not None:
            plant = find_plant(views, plant).id
        with store.read() as conn:
            items, nxt = mints_page(conn, known, plant, start, limit)
        return ExactJSON({"items": items, "next": nxt}, headers=NO_STORE)

    @router.get(
        "/anomalies",
        response_model=AnomalyPage,
        dependencies=paged,
        summary="Anomalies (docs/accounting.md), in id order",
    )
    def anomalies(after: After = None, limit: Limit = DEFAULT_LIMIT) -> ExactJSON:
        start = parse_cursor(after)
        with store.read() as conn:
            items, nxt = anomalies_page(conn, start, limit)
        return ExactJSON({"items": items, "next": nxt}, headers=NO_STORE)

    return router
