"""GET /api/v1/credits, /api/v1/mints and /api/v1/anomalies: id-ordered pages.

Paging by id never skips nor repeats an item, even while new rows arrive: every writer
is serialized by the store, so ids become visible in increasing order, and a page is
"the next `limit` ids after the cursor". The cursor is the id of the last item returned
(as a string); `next` is null on the last page, and a client that wants later rows
polls again with the id of the last item it holds.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection, Select, and_, select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.daemon.api.models import AnomalyPage, CreditPage, Error, MintPage
from heliod.daemon.api.plants import PLANT_PATTERN, find_plant
from heliod.daemon.api.responses import NO_STORE, ExactJSON, bad_parameter, only_params
from heliod.daemon.config import Config
from heliod.daemon.output import amount
from heliod.daemon.views import anomaly_item
from heliod.rewards.times import rfc3339

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


def page(
    conn: Connection, stmt: Select[Any], id_column: Any, after: int, limit: int
) -> tuple[list[Any], str | None]:
    """Rows with id > after, at most `limit`, and the cursor of the next page (None: last)."""
    found = conn.execute(stmt.where(id_column > after).order_by(id_column).limit(limit + 1)).all()
    more = len(found) > limit
    rows = list(found[:limit])
    return rows, (str(rows[-1].id) if more and rows else None)


class Books:
    """Symbol and decimals per plant: the configuration's, else the plant's last push body."""

    def __init__(self, config: Config, conn: Connection) -> None:
        self._known = {p.id: (p.reward.symbol, p.reward.decimals) for p in config.plants}
        self._conn = conn

    def __call__(self, plant: str) -> tuple[str, int]:
        """(symbol, decimals) of a plant."""
        found = self._known.get(plant)
        if found is None:
            # A plant removed from the file keeps its ledger; its events recorded both.
            m = t.mints.c
            event = self._conn.execute(
                select(m.event).where(m.plant == plant).order_by(m.mwh_index.desc()).limit(1)
            ).scalar()
            body = json.loads(event) if event else {}
            found = self._known[plant] = (str(body.get("symbol", "")), int(body.get("decimals", 0)))
        return found


def ledger_router(store: Store, config: Config) -> APIRouter:
    """The paged ledger routes (the caller adds the token dependency)."""
    router = APIRouter()

    paged = [Depends(only_params("after", "limit"))]

    @router.get(
        "/credits", response_model=CreditPage, dependencies=paged, summary="Credits, in id order"
    )
    def credits(after: After = None, limit: Limit = DEFAULT_LIMIT) -> ExactJSON:
        start = parse_cursor(after)
        c, m = t.credits.c, t.mints.c
        stmt = select(c.id, c.plant, c.mwh_index, c.backer, c.units, m.completed_at_us).select_from(
            t.credits.join(t.mints, and_(m.plant == c.plant, m.mwh_index == c.mwh_index))
        )
        with store.read() as conn:
            rows, nxt = page(conn, stmt, c.id, start, limit)
            books = Books(config, conn)
            items = []
            for r in rows:
                symbol, decimals = books(r.plant)
                items.append(
                    {
                        "id": int(r.id),
                        "plant": r.plant,
                        "mwh_index": int(r.mwh_index),
                        "completed_at": rfc3339(int(r.completed_at_us)),
                        "backer": r.backer,
                        "units": int(r.units),
                        "amount": amount(int(r.units), decimals),
                        "symbol": symbol,
                    }
                )
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
        m = t.mints.c
        stmt = select(
            m.id,
            m.plant,
            m.mwh_index,
            m.completed_at_us,
            m.committed_us,
            m.units,
            m.undistributed_after,
        )
        if plant is not None:
            stmt = stmt.where(m.plant == find_plant(config, plant).id)
        with store.read() as conn:
            rows, nxt = page(conn, stmt, m.id, start, limit)
            books = Books(config, conn)
            items = []
            for r in rows:
                symbol, decimals = books(r.plant)
                units, after_units = int(r.units), int(r.undistributed_after)
                items.append(
                    {
                        "id": int(r.id),
                        "event_id": f"{r.plant}:{r.mwh_index}",
                        "plant": r.plant,
                        "mwh_index": int(r.mwh_index),
                        "completed_at": rfc3339(int(r.completed_at_us)),
                        "committed_at": rfc3339(int(r.committed_us)),
                        "symbol": symbol,
                        "decimals": decimals,
                        "units": units,
                        "amount": amount(units, decimals),
                        "undistributed": {
                            "units": after_units,
                            "amount": amount(after_units, decimals),
                        },
                    }
                )
        return ExactJSON({"items": items, "next": nxt}, headers=NO_STORE)

    @router.get(
        "/anomalies",
        response_model=AnomalyPage,
        dependencies=paged,
        summary="Anomalies (§4), in id order",
    )
    def anomalies(after: After = None, limit: Limit = DEFAULT_LIMIT) -> ExactJSON:
        start = parse_cursor(after)
        with store.read() as conn:
            rows, nxt = page(conn, select(t.anomalies), t.anomalies.c.id, start, limit)
        items = [anomaly_item(r._mapping) for r in rows]
        return ExactJSON({"items": items, "next": nxt}, headers=NO_STORE)

    return router
