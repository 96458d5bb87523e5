"""Milestone and challenge events in the store, inside a transaction the caller holds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from heliod.adapters.store import schema as t
from heliod.rewards.goals import ChallengeSettled, GoalEvent, MilestoneReached, Placement


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of `events`: what was committed, where it goes in the plant's push order."""

    row_id: int
    plant: str
    event_id: str
    kind: str  # milestone | challenge
    goal: str  # the milestone's mwh or the challenge's id
    status: str  # reached | missed
    at_us: int
    after_mint: int
    placement: Placement | None
    body: str


def body_text(event: GoalEvent) -> str:
    """The push body, serialized once at commit like a mint's."""
    return json.dumps(event.body(), separators=(",", ":"))


def insert_event(
    conn: Connection,
    event: GoalEvent,
    *,
    after_mint: int,
    now_us: int,
    placement: Placement | None = None,
) -> int:
    """Store one event (its id is unique: a second insert fails the transaction)."""
    if isinstance(event, MilestoneReached):
        kind, goal, status, at_us = (
            "milestone",
            str(event.milestone.mwh),
            "reached",
            event.reached_at_us,
        )
    else:
        assert isinstance(event, ChallengeSettled)
        kind, goal, status, at_us = "challenge", event.challenge.id, str(event.status), event.at_us
    result = conn.execute(
        insert(t.events).values(
            plant=event.plant,
            event_id=event.id,
            kind=kind,
            goal=goal,
            status=status,
            at_us=at_us,
            after_mint=after_mint,
            position=None if placement is None else placement.position,
            decision_id=None if placement is None else placement.decision_id,
            body=body_text(event),
            committed_us=now_us,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def event_ids(conn: Connection, plant: str) -> set[str]:
    """Ids of the plant's stored events."""
    e = t.events.c
    return {str(x) for (x,) in conn.execute(select(e.event_id).where(e.plant == plant))}


def stored_events(conn: Connection, plant: str | None = None) -> list[StoredEvent]:
    """Stored events (of one plant, or all), in push order per plant."""
    e = t.events.c
    stmt = select(
        e.id,
        e.plant,
        e.event_id,
        e.kind,
        e.goal,
        e.status,
        e.at_us,
        e.after_mint,
        e.position,
        e.decision_id,
        e.body,
    ).order_by(e.plant, e.after_mint, e.id)
    if plant is not None:
        stmt = stmt.where(e.plant == plant)
    return [
        StoredEvent(
            int(row.id),
            row.plant,
            row.event_id,
            row.kind,
            row.goal,
            row.status,
            int(row.at_us),
            int(row.after_mint),
            None
            if row.position is None
            else Placement(row.plant, row.goal, int(row.position), int(row.decision_id or 0)),
            row.body,
        )
        for row in conn.execute(stmt)
    ]


def event_body(conn: Connection, row_id: int) -> str | None:
    """The stored push body of the event in row `row_id` (None: no such row)."""
    e = t.events.c
    body = conn.execute(select(e.body).where(e.id == row_id)).scalar()
    return None if body is None else str(body)


def completion_times(conn: Connection, plant: str, ks: Iterable[int]) -> dict[int, int]:
    """Completion time (µs) of each of the plant's mints numbered in `ks` that exists."""
    wanted = sorted(set(ks))
    if not wanted:
        return {}
    m = t.mints.c
    stmt = select(m.mwh_index, m.completed_at_us).where(m.plant == plant, m.mwh_index.in_(wanted))
    return {int(k): int(at) for k, at in conn.execute(stmt)}
