"""The push outbox: each mint's and each goal event's stored body, and how its delivery
stands (`deliveries` for mints, `event_deliveries` for milestone and challenge events).

An item without a delivery row has not been tried yet: it is pending. A plant's outbox
is its mints in index order, each followed by the goal events committed after it (in
store order; events committed before the first mint come first). The next item to send
is the first one neither delivered nor parked (rejected), so the platform sees each
plant's events in order, every goal event after the mint that caused it
(docs/platform.md, "Push").
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
GOAL_EVENT_ID = re.compile(
    r"[a-z0-9_-]{1,64}:(?:milestone:[1-9][0-9]{0,9}|challenge:[a-z0-9_-]{1,64})"
)
_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class HeadState:
    """A plant's next event to send: mint `mwh_index`, or the goal event in row
    `event_row` (id `event_key`) that follows that mint."""

    plant: str
    mwh_index: int
    attempts: int
    next_attempt_us: int
    event_row: int | None = None
    event_key: str = ""

    @property
    def id(self) -> str:
        """The event id and Idempotency-Key: `<plant>:<k>`, or the goal event's id."""
        return self.event_key or f"{self.plant}:{self.mwh_index}"


@dataclass(frozen=True, slots=True)
class Head(HeadState):
    """The next event of a plant with its body, as it is sent."""

    body: bytes = b""


def parse_event_id(text: str) -> tuple[str, int] | str:
    """(plant, k) of a mint's event id `plant:k`, or a goal event's id as is (e.g.
    `plant:milestone:100`); ValueError naming the expected forms."""
    text = text.strip()
    match = EVENT_ID.fullmatch(text)
    if match is not None:
        return match["plant"], int(match["k"])
    if GOAL_EVENT_ID.fullmatch(text):
        return text
    raise ValueError(
        f"not an event id: {text!r} (expected PLANT:K, e.g. brassemonte:12, or "
        "PLANT:milestone:MWH or PLANT:challenge:ID)"
    )


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


def _open_goal_events(conn: Connection) -> dict[str, tuple[int, int, str]]:
    """plant -> (the mint it follows, row, id) of its first goal event neither delivered
    nor parked. Goal events are few (a plant has tens in its life): all open ones are read."""
    e, d = t.events.c, t.event_deliveries.c
    stmt = (
        select(e.plant, e.after_mint, e.id, e.event_id)
        .select_from(t.events.outerjoin(t.event_deliveries, d.event == e.id))
        .where(or_(d.status.is_(None), d.status == PENDING))
        .order_by(e.plant, e.after_mint, e.id)
    )
    out: dict[str, tuple[int, int, str]] = {}
    for plant, after, row, key in conn.execute(stmt):
        out.setdefault(str(plant), (int(after), int(row), str(key)))
    return out


def head_states(conn: Connection) -> list[HeadState]:
    """Each plant's next event (attempts and when it is due), no body read."""
    d, g = t.deliveries.c, t.event_deliveries.c
    mints = dict(_open(conn))
    goals = _open_goal_events(conn)
    out = []
    for plant in sorted(set(mints) | set(goals)):
        k = mints.get(plant)
        goal = goals.get(plant)
        if goal is not None and (k is None or goal[0] < k):  # it follows an earlier mint
            after, row_id, key = goal
            row = conn.execute(
                select(g.attempts, g.next_attempt_us).where(g.event == row_id)
            ).first()
            attempts, due = (int(row[0]), int(row[1])) if row is not None else (0, 0)
            out.append(HeadState(plant, after, attempts, due, row_id, key))
            continue
        assert k is not None
        row = conn.execute(
            select(d.attempts, d.next_attempt_us).where(d.plant == plant, d.mwh_index == k)
        ).first()
        attempts, due = (int(row[0]), int(row[1])) if row is not None else (0, 0)
        out.append(HeadState(plant, k, attempts, due))
    return out


def heads(
    conn: Connection,
    due_by_us: int | None = None,
    wants: Callable[[str], bool] | None = None,
) -> list[Head]:
    """Each plant's next event to send (only those due by `due_by_us` and of plants `wants`).

    A body is read only for the heads returned: a mint of 100,000 backers weighs megabytes.
    """
    m, e = t.mints.c, t.events.c
    out = []
    for h in head_states(conn):
        late = due_by_us is not None and h.next_attempt_us > due_by_us
        if late or (wants is not None and not wants(h.plant)):
            continue
        if h.event_row is not None:
            stmt = select(e.body).where(e.id == h.event_row)
        else:
            stmt = select(m.event).where(m.plant == h.plant, m.mwh_index == h.mwh_index)
        body = str(conn.execute(stmt).scalar_one()).encode("utf-8")
        out.append(
            Head(
                h.plant, h.mwh_index, h.attempts, h.next_attempt_us, h.event_row, h.event_key, body
            )
        )
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
    keys: dict[str, object]
    if head.event_row is not None:
        g = t.event_deliveries.c
        table, keys = t.event_deliveries, {"event": head.event_row}
        where = g.event == head.event_row
        current = conn.execute(select(g.status, g.attempts).where(where)).first()
    else:
        d = t.deliveries.c
        table, keys = t.deliveries, {"plant": head.plant, "mwh_index": head.mwh_index}
        where = and_(d.plant == head.plant, d.mwh_index == head.mwh_index)
        current = conn.execute(select(d.status, d.attempts).where(where)).first()
    if current is not None and current[0] != PENDING:
        return  # settled meanwhile by another writer: its word stands
    upsert(
        conn,
        table,
        [
            {
                **keys,
                "status": status,
                "attempts": (int(current[1]) if current is not None else 0) + 1,
                "next_attempt_us": next_attempt_us,
                "last_status": http_status,
                "last_error": None if error is None else error[:_ERROR_CHARS],
                "updated_us": now_us,
            }
        ],
        keys=list(keys),
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
    """plant -> {"minted", "goal_events", "pending", "delivered", "rejected"}: its mints,
    its milestone and challenge events, and how the delivery of all of them stands."""
    m, d = t.mints.c, t.deliveries.c
    e, g = t.events.c, t.event_deliveries.c
    mints = (
        select(m.plant, d.status, func.count())
        .select_from(
            t.mints.outerjoin(t.deliveries, and_(d.plant == m.plant, d.mwh_index == m.mwh_index))
        )
        .group_by(m.plant, d.status)
    )
    goals = (
        select(e.plant, g.status, func.count())
        .select_from(t.events.outerjoin(t.event_deliveries, g.event == e.id))
        .group_by(e.plant, g.status)
    )
    out: dict[str, dict[str, int]] = {}
    for kind, stmt in (("minted", mints), ("goal_events", goals)):
        for plant, status, n in conn.execute(stmt):
            counts = out.setdefault(
                str(plant), {"minted": 0, "goal_events": 0, PENDING: 0, DELIVERED: 0, REJECTED: 0}
            )
            counts[kind] += int(n)
            counts[status or PENDING] += int(n)
    return out


def counts(conn: Connection) -> dict[str, int]:
    """{"pending": N, "rejected": N} over every plant (the `sync` object of /healthz)."""
    totals = {PENDING: 0, REJECTED: 0}
    for plant in per_plant(conn).values():
        totals[PENDING] += plant[PENDING]
        totals[REJECTED] += plant[REJECTED]
    return totals


def requeue(conn: Connection, now_us: int, event: tuple[str, int] | str | None = None) -> int:
    """Re-queue parked events (all, the mint (plant, k), or the goal event with this id);
    returns how many.

    Raises LookupError for an event that names no mint or goal event. An event that is
    not parked (pending or delivered) is left alone: 0 is returned.
    """
    d, m = t.deliveries.c, t.mints.c
    e, g = t.events.c, t.event_deliveries.c
    again = {"status": PENDING, "attempts": 0, "next_attempt_us": now_us, "updated_us": now_us}
    mints = update(t.deliveries).where(d.status == REJECTED).values(**again)
    goals = update(t.event_deliveries).where(g.status == REJECTED).values(**again)
    if event is None:
        return int(conn.execute(mints).rowcount or 0) + int(conn.execute(goals).rowcount or 0)
    if isinstance(event, str):
        row = conn.execute(select(e.id).where(e.event_id == event)).scalar()
        if row is None:
            raise LookupError(event)
        return int(conn.execute(goals.where(g.event == row)).rowcount or 0)
    plant, k = event
    exists = conn.execute(select(func.count()).where(m.plant == plant, m.mwh_index == k)).scalar()
    if not exists:
        raise LookupError(f"{plant}:{k}")
    return int(conn.execute(mints.where(d.plant == plant, d.mwh_index == k)).rowcount or 0)
