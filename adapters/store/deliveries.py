"""The push outbox: each mint's stored body and the `deliveries` row of how it stands.

A mint without a delivery row has not been tried yet: it is pending. Per plant, the
next event to send is the lowest mint index neither delivered nor parked (rejected), so
the platform sees each plant's events in order (docs/platform.md, "Push").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, or_, select, update

from heliod.adapters.store import schema as t
from heliod.adapters.store.store import upsert

PENDING, DELIVERED, REJECTED = "pending", "delivered", "rejected"
EVENT_ID = re.compile(r"(?P<plant>[a-z0-9_-]{1,64}):(?P<k>[1-9][0-9]{0,17})")
_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Head:
    """The oldest undelivered, unparked event of a plant."""

    plant: str
    mwh_index: int
    body: bytes
    attempts: int
    next_attempt_us: int

    @property
    def id(self) -> str:
        """The event id and Idempotency-Key, `<plant>:<k>`."""
        return f"{self.plant}:{self.mwh_index}"


def parse_event_id(text: str) -> tuple[str, int]:
    """(plant, k) of an event id `plant:k`; ValueError naming the expected form."""
    match = EVENT_ID.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an event id: {text!r} (expected PLANT:K, e.g. brassemonte:12)")
    return match["plant"], int(match["k"])


def _open(conn: Connection) -> list[tuple[str, int]]:
    """(plant, lowest k) of each plant's oldest mint that is neither delivered nor parked."""
    m, d = t.mints.c, t.deliveries.c
    stmt = (
        select(m.plant, func.min(m.mwh_index))
        .select_from(
            t.mints.outerjoin(t.deliveries, and_(d.plant == m.plant, d.mwh_index == m.mwh_index))
        )
        .where(or_(d.status.is_(None), d.status == PENDING))
        .group_by(m.plant)
        .order_by(m.plant)
    )
    return [(str(p), int(k)) for p, k in conn.execute(stmt)]


def head_states(conn: Connection) -> list[tuple[str, int, int, int]]:
    """(plant, k, attempts, next attempt µs) of each plant's next event, no body read."""
    d = t.deliveries.c
    out = []
    for plant, k in _open(conn):
        row = conn.execute(
            select(d.attempts, d.next_attempt_us).where(d.plant == plant, d.mwh_index == k)
        ).first()
        attempts, due = (int(row[0]), int(row[1])) if row is not None else (0, 0)
        out.append((plant, k, attempts, due))
    return out


def heads(
    conn: Connection,
    due_by_us: int | None = None,
    wants: Callable[[str], bool] | None = None,
) -> list[Head]:
    """Each plant's next event to send (only those due by `due_by_us` and of plants `wants`).

    A body is read only for the heads returned: a mint of 100,000 backers weighs megabytes.
    """
    m = t.mints.c
    out = []
    for plant, k, attempts, due in head_states(conn):
        if (due_by_us is not None and due > due_by_us) or (wants is not None and not wants(plant)):
            continue
        event = conn.execute(select(m.event).where(m.plant == plant, m.mwh_index == k)).scalar_one()
        out.append(Head(plant, k, str(event).encode("utf-8"), attempts, due))
    return out


def record(
    conn: Connection,
    head: Head,
    *,
    status: str,
    next_attempt_us: int,
    http_status: int | None,
    error: str | None,
    now_us: int,
) -> None:
    """Write the outcome of one attempt on `head` (inside the caller's writer transaction)."""
    d = t.deliveries.c
    current = conn.execute(
        select(d.status, d.attempts).where(d.plant == head.plant, d.mwh_index == head.mwh_index)
    ).first()
    if current is not None and current[0] != PENDING:
        return  # settled meanwhile by another writer: its word stands
    upsert(
        conn,
        t.deliveries,
        [
            {
                "plant": head.plant,
                "mwh_index": head.mwh_index,
                "status": status,
                "attempts": (int(current[1]) if current is not None else 0) + 1,
                "next_attempt_us": next_attempt_us,
                "last_status": http_status,
                "last_error": None if error is None else error[:_ERROR_CHARS],
                "updated_us": now_us,
            }
        ],
        keys=["plant", "mwh_index"],
        replace=[
            "status",
            "attempts",
            "next_attempt_us",
            "last_status",
            "last_error",
            "updated_us",
        ],
    )


def per_plant(conn: Connection) -> dict[str, dict[str, int]]:
    """plant -> {"minted", "pending", "delivered", "rejected"} counts of its events."""
    m, d = t.mints.c, t.deliveries.c
    stmt = (
        select(m.plant, d.status, func.count())
        .select_from(
            t.mints.outerjoin(t.deliveries, and_(d.plant == m.plant, d.mwh_index == m.mwh_index))
        )
        .group_by(m.plant, d.status)
    )
    out: dict[str, dict[str, int]] = {}
    for plant, status, n in conn.execute(stmt):
        counts = out.setdefault(str(plant), {"minted": 0, PENDING: 0, DELIVERED: 0, REJECTED: 0})
        counts["minted"] += int(n)
        counts[status or PENDING] += int(n)
    return out


def counts(conn: Connection) -> dict[str, int]:
    """{"pending": N, "rejected": N} over every plant (the `sync` object of /healthz)."""
    totals = {PENDING: 0, REJECTED: 0}
    for plant in per_plant(conn).values():
        totals[PENDING] += plant[PENDING]
        totals[REJECTED] += plant[REJECTED]
    return totals


def requeue(conn: Connection, now_us: int, event: tuple[str, int] | None = None) -> int:
    """Re-queue parked events (all, or the one (plant, k)); returns how many.

    Raises LookupError for an event that names no mint. An event that is not parked
    (pending or delivered) is left alone: 0 is returned.
    """
    d, m = t.deliveries.c, t.mints.c
    stmt = (
        update(t.deliveries)
        .where(d.status == REJECTED)
        .values(status=PENDING, attempts=0, next_attempt_us=now_us, updated_us=now_us)
    )
    if event is not None:
        plant, k = event
        exists = conn.execute(
            select(func.count()).where(m.plant == plant, m.mwh_index == k)
        ).scalar()
        if not exists:
            raise LookupError(f"{plant}:{k}")
        stmt = stmt.where(d.plant == plant, d.mwh_index == k)
    return int(conn.execute(stmt).rowcount or 0)
