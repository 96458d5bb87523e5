"""`heliod sync status` and `heliod sync retry`: what the delivery to the platform stands at.

Counts come from the store (mints and their `deliveries` rows), never from a running
daemon, so the command gives the same answer with the daemon up or down. A mint without
a delivery row has not been tried yet: it is pending.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.daemon.push import DELIVERED, PENDING, REJECTED, head_states
from heliod.rewards.times import rfc3339

EVENT_ID = re.compile(r"(?P<plant>[a-z0-9_-]{1,64}):(?P<k>[1-9][0-9]{0,17})")


def _per_plant(conn: Connection) -> dict[str, dict[str, int]]:
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


def counts_in(conn: Connection) -> dict[str, int]:
    """{"pending": N, "rejected": N} over every plant (the `sync` object of /healthz)."""
    totals = {PENDING: 0, REJECTED: 0}
    for counts in _per_plant(conn).values():
        totals[PENDING] += counts[PENDING]
        totals[REJECTED] += counts[REJECTED]
    return totals


def sync_counts(store: Store) -> dict[str, int]:
    """{"pending": N, "rejected": N}: for /healthz and the push backlog metric."""
    with store.read() as conn:
        return counts_in(conn)


def sync_status(store: Store) -> dict[str, Any]:
    """Delivery state per plant, the next event of each, and every parked event (JSON-able)."""
    d = t.deliveries.c
    with store.read() as conn:
        plants = _per_plant(conn)
        nexts = {plant: (k, attempts, due) for plant, k, attempts, due in head_states(conn)}
        states = {
            (row.plant, int(row.mwh_index)): row
            for row in conn.execute(
                select(d.plant, d.mwh_index, d.last_status, d.last_error, d.updated_us).where(
                    d.plant.in_(list(nexts)),
                    d.status == PENDING,
                )
            )
        }
        parked = conn.execute(
            select(d.plant, d.mwh_index, d.attempts, d.last_status, d.last_error, d.updated_us)
            .where(d.status == REJECTED)
            .order_by(d.plant, d.mwh_index)
        ).all()
    out_plants = {}
    for plant, counts in sorted(plants.items()):
        head = nexts.get(plant)
        entry: dict[str, Any] = {**counts, "next": None}
        if head is not None:
            k, attempts, due = head
            row = states.get((plant, k))
            entry["next"] = {
                "id": f"{plant}:{k}",
                "attempts": attempts,
                "next_attempt_at": rfc3339(due) if attempts else None,
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
                "id": f"{r.plant}:{r.mwh_index}",
                "attempts": int(r.attempts),
                "last_status": r.last_status,
                "last_error": r.last_error,
                "rejected_at": rfc3339(int(r.updated_us)),
            }
            for r in parked
        ],
    }


def render_status(status: dict[str, Any]) -> str:
    """The text of `heliod sync status` for people."""
    lines = [
        f"{status['delivered']} delivered, {status['pending']} pending, "
        f"{status['rejected']} rejected"
    ]
    for plant, p in status["plants"].items():
        lines.append(
            f"{plant}: {p['minted']} minted, {p['delivered']} delivered, "
            f"{p['pending']} pending, {p['rejected']} rejected"
        )
        head = p["next"]
        if head is not None and head["attempts"]:
            why = head["last_error"] or "-"
            tries = f"{head['attempts']} attempt" + ("s" if head["attempts"] > 1 else "")
            lines.append(
                f"  next {head['id']}: {tries}, "
                f"next at {head['next_attempt_at']}, last error: {why}"
            )
        elif head is not None:
            lines.append(f"  next {head['id']}: not tried yet")
    if status["rejected_events"]:
        lines.append("rejected (re-queue with `heliod sync retry [ID]`):")
        for r in status["rejected_events"]:
            lines.append(f"  {r['id']}  {r['rejected_at']}  {r['last_error']}")
    return "\n".join(lines)


def parse_event_id(text: str) -> tuple[str, int]:
    """(plant, k) of an event id `plant:k`; ValueError naming the expected form."""
    match = EVENT_ID.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an event id: {text!r} (expected PLANT:K, e.g. brassemonte:12)")
    return match["plant"], int(match["k"])


def sync_retry(store: Store, event_id: str | None = None, now_us: int | None = None) -> int:
    """Re-queue parked events (all, or the one `plant:k`); returns how many.

    Raises ValueError for a malformed id and LookupError for an id that names no mint.
    An event that is not parked (pending or delivered) is left alone: 0 is returned.
    """
    now = time.time_ns() // 1000 if now_us is None else now_us
    d, m = t.deliveries.c, t.mints.c
    requeue = (
        update(t.deliveries)
        .where(d.status == REJECTED)
        .values(status=PENDING, attempts=0, next_attempt_us=now, updated_us=now)
    )
    with store.write() as conn:
        if event_id is not None:
            plant, k = parse_event_id(event_id)
            exists = conn.execute(
                select(func.count()).where(m.plant == plant, m.mwh_index == k)
            ).scalar()
            if not exists:
                raise LookupError(f"no mint {plant}:{k}")
            requeue = requeue.where(d.plant == plant, d.mwh_index == k)
        return int(conn.execute(requeue).rowcount or 0)
