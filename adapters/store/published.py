"""What the MQTT publisher has published of the mints and goal events, in the store.

The publisher sends each committed mint and each milestone or challenge event once, in
commit order, from two positions (the last `mints.id` and `events.id` the broker
acknowledged) kept in `positions`, so a restart neither publishes one again nor skips
one (docs/mqtt.md, "Published topics").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from heliod.adapters.store import schema as t
from heliod.adapters.store.store import set_position

MINTS = "mqtt-mints"  # position: the last mints.id published
EVENTS = "mqtt-events"  # position: the last events.id published


@dataclass(frozen=True, slots=True)
class Item:
    """A committed mint (`event_row` None) or goal event, with its push body."""

    row_id: int
    plant: str
    mwh_index: int  # the mint's number, or the mint the event follows
    event_row: int | None
    body: str


def start(conn: Connection, now_us: int) -> tuple[int, int]:
    """(mints, events) positions; the first time, the newest rows: a publisher that starts
    on a store with a history publishes what is committed from now on, not the past."""
    p = t.positions.c
    rows = conn.execute(select(p.consumer, p.position).where(p.consumer.in_((MINTS, EVENTS))))
    stored = {str(c): int(n) for c, n in rows}
    out = []
    for consumer, table in ((MINTS, t.mints), (EVENTS, t.events)):
        if consumer in stored:
            out.append(int(stored[consumer]))
            continue
        newest = int(conn.execute(select(func.max(table.c.id))).scalar() or 0)
        set_position(conn, consumer, newest, now_us)
        out.append(newest)
    return out[0], out[1]


def save(conn: Connection, mints: int, events: int, now_us: int) -> None:
    """Record that the broker acknowledged every mint and event up to these row ids."""
    set_position(conn, MINTS, mints, now_us)
    set_position(conn, EVENTS, events, now_us)


def mints_after(conn: Connection, after: int, limit: int) -> list[Item]:
    """The next `limit` committed mints after row `after`, in commit order."""
    m = t.mints.c
    stmt = (
        select(m.id, m.plant, m.mwh_index, m.event).where(m.id > after).order_by(m.id).limit(limit)
    )
    return [Item(int(i), p, int(k), None, str(b)) for i, p, k, b in conn.execute(stmt)]


def events_after(conn: Connection, after: int, limit: int) -> list[Item]:
    """The next `limit` committed goal events after row `after`, in commit order."""
    e = t.events.c
    stmt = (
        select(e.id, e.plant, e.after_mint, e.body).where(e.id > after).order_by(e.id).limit(limit)
    )
    return [Item(int(i), p, int(k), int(i), str(b)) for i, p, k, b in conn.execute(stmt)]


def newest_mints(conn: Connection, upto: int) -> dict[str, int]:
    """Per plant, the highest MWh number among the mints up to row `upto`."""
    m = t.mints.c
    stmt = select(m.plant, func.max(m.mwh_index)).where(m.id <= upto).group_by(m.plant)
    return {str(p): int(k) for p, k in conn.execute(stmt)}
