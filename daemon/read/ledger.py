"""The ledger in pages: credits, mints and anomalies in id order (docs/platform.md, "Paging").

Paging by id never skips nor repeats an item, even while new rows arrive: every writer
is serialized by the store, so ids become visible in increasing order, and a page is
"the next `limit` ids after the cursor". The cursor is the id of the last item returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Select, and_, select

from heliod.adapters.store import schema as t
from heliod.daemon.read.anomalies import anomaly_item
from heliod.rewards.ledger import PlantBook
from heliod.rewards.times import rfc3339
from heliod.rewards.units import amount

Page = tuple[list[dict[str, Any]], str | None]


def _page(
    conn: Connection, stmt: Select[Any], id_column: Any, after: int, limit: int
) -> tuple[list[Any], str | None]:
    """Rows with id > after, at most `limit`, and the cursor of the next page (None: last)."""
    found = conn.execute(stmt.where(id_column > after).order_by(id_column).limit(limit + 1)).all()
    more = len(found) > limit
    rows = list(found[:limit])
    return rows, (str(rows[-1].id) if more and rows else None)


class Books:
    """Symbol and decimals per plant: the configured ones, else the plant's last push body."""

    def __init__(self, known: Mapping[str, tuple[str, int]], conn: Connection) -> None:
        self._known = dict(known)
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


def credits_page(
    conn: Connection, known: Mapping[str, tuple[str, int]], after: int, limit: int
) -> Page:
    """One page of GET /api/v1/credits."""
    c, m = t.credits.c, t.mints.c
    stmt = select(c.id, c.plant, c.mwh_index, c.backer, c.units, m.completed_at_us).select_from(
        t.credits.join(t.mints, and_(m.plant == c.plant, m.mwh_index == c.mwh_index))
    )
    rows, nxt = _page(conn, stmt, c.id, after, limit)
    books = Books(known, conn)
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
    return items, nxt


def mints_page(
    conn: Connection,
    known: Mapping[str, tuple[str, int]],
    plant: str | None,
    after: int,
    limit: int,
) -> Page:
    """One page of GET /api/v1/mints (of one plant, or of all)."""
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
        stmt = stmt.where(m.plant == plant)
    rows, nxt = _page(conn, stmt, m.id, after, limit)
    books = Books(known, conn)
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
                "undistributed": {"units": after_units, "amount": amount(after_units, decimals)},
            }
        )
    return items, nxt


def anomalies_page(conn: Connection, after: int, limit: int) -> Page:
    """One page of GET /api/v1/anomalies."""
    rows, nxt = _page(conn, select(t.anomalies), t.anomalies.c.id, after, limit)
    return [anomaly_item(r._mapping) for r in rows], nxt


def export_rows(conn: Connection, books: Mapping[str, PlantBook]) -> Iterator[dict[str, Any]]:
    """Every mint with its credits, in mint id order (`heliod ledger export`)."""
    m = t.mints.c
    for plant, k, completed, units, undistributed in conn.execute(
        select(m.plant, m.mwh_index, m.completed_at_us, m.units, m.undistributed_after).order_by(
            m.id
        )
    ):
        book = books.get(plant)
        d = book.decimals if book else 0
        credits = mint_credits(conn, plant, int(k))
        yield {
            "plant": plant,
            "mwh_index": int(k),
            "completed_at": rfc3339(int(completed)),
            "symbol": book.symbol if book else "",
            "units": int(units),
            "amount": amount(int(units), d),
            "undistributed_units": int(undistributed),
            "credits": [{"backer": b, "units": u, "amount": amount(u, d)} for b, u in credits],
        }


def mint_credits(conn: Connection, plant: str, k: int) -> list[tuple[str, int]]:
    """Credits of one mint in id order."""
    c = t.credits.c
    return [
        (b, int(u))
        for b, u in conn.execute(
            select(c.backer, c.units).where(c.plant == plant, c.mwh_index == k).order_by(c.id)
        )
    ]
