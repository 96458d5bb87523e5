"""What the delivery to the platform stands at: `heliod sync status`, /healthz and metrics.

Counts come from the store (mints and goal events, and their delivery rows), never from
a running daemon, so the command gives the same answer with the daemon up or down. An
event without a delivery row has not been tried yet: it is pending.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.deliveries import (
    DELIVERED,
    PENDING,
    REJECTED,
    counts,
    head_states,
    per_plant,
)
from heliod.rewards.times import rfc3339


def sync_counts(store: Store) -> dict[str, int]:
    """{"pending": N, "rejected": N}: for /healthz and the push backlog metric."""
    with store.read() as conn:
        return counts(conn)


def sync_status(store: Store) -> dict[str, Any]:
    """Delivery state per plant, the next event of each, and every parked event (JSON-able)."""
    d, e, g = t.deliveries.c, t.events.c, t.event_deliveries.c
    with store.read() as conn:
        plants = per_plant(conn)
        nexts = {h.plant: h for h in head_states(conn)}
        states = {
            (row.plant, int(row.mwh_index)): row
            for row in conn.execute(
                select(d.plant, d.mwh_index, d.last_status, d.last_error).where(
                    d.plant.in_(list(nexts)),
                    d.status == PENDING,
                )
            )
        }
        goal_rows = [h.event_row for h in nexts.values() if h.event_row is not None]
        goal_states = {
            int(row.event): row
            for row in conn.execute(
                select(g.event, g.last_status, g.last_error).where(g.event.in_(goal_rows))
            )
        }
        parked: list[tuple[str, Any]] = [
            (f"{r.plant}:{r.mwh_index}", r)
            for r in conn.execute(
                select(d.plant, d.mwh_index, d.attempts, d.last_status, d.last_error, d.updated_us)
                .where(d.status == REJECTED)
                .order_by(d.plant, d.mwh_index)
            )
        ]
        parked += [
            (str(r.event_id), r)
            for r in conn.execute(
                select(e.event_id, g.attempts, g.last_status, g.last_error, g.updated_us)
                .join(t.events, e.id == g.event)
                .where(g.status == REJECTED)
                .order_by(e.plant, e.after_mint, e.id)
            )
        ]
    out_plants = {}
    for plant, tally in sorted(plants.items()):
        head = nexts.get(plant)
        entry: dict[str, Any] = {**tally, "next": None}
        if head is not None:
            row: Any
            if head.event_row is not None:
                row = goal_states.get(head.event_row)
            else:
                row = states.get((plant, head.mwh_index))
            entry["next"] = {
                "id": head.id,
                "attempts": head.attempts,
                "next_attempt_at": rfc3339(head.next_attempt_us) if head.attempts else None,
                "last_status": None if row is None else row.last_status,
                "last_error": None if row is None else row.last_error,
            }
        out_plants[plant] = entry
    return {
        "pending": sum(p[PENDING] for p in plants.values()),
        "delivered": sum(p[DELIVERED] for p in plants.values()),
        "rejected": sum(p[REJECTED] for p in plants.values()),
        "plants": out_plants,
        "rejected_events": [
            {
                "id": event_id,
                "attempts": int(r.attempts),
                "last_status": r.last_status,
                "last_error": r.last_error,
                "rejected_at": rfc3339(int(r.updated_us)),
            }
            for event_id, r in parked
        ],
    }
