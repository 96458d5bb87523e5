"""Milestones and challenges as the faces show them (docs/milestones.md).

`GET /api/v1/plants/{id}/milestones`, `heliod milestones` and the dashboard read a plant's
goals here: the configured ones, each with its stored event when it has one. A milestone
whose mint exists but whose event the accountant has not committed yet (it was added to
the configuration since) already shows that mint's time: the event will carry the same.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection

from heliod.adapters.store import goals_repo
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store.goals_repo import StoredEvent
from heliod.daemon.read.plants import PlantView, energy_of, impact_figures
from heliod.rewards.goals import (
    GoalBook,
    PlantGoals,
    Status,
    challenge_id,
    milestone_id,
    progress,
)
from heliod.rewards.times import rfc3339

PROGRESS_PLACES = 4  # progress is shown rounded down to 0.0001: never 1 before it is reached
MWH_IN_MWH_UNITS = 10**9  # one MWh in the store's integer mWh
BANNER_US = 24 * 3600 * 1_000_000  # a goal reached is announced on the dashboard for 24 h


def _book(plant: PlantView) -> GoalBook:
    return (plant.goals or PlantGoals(plant.id)).book()


def _ratio(value: Fraction) -> Decimal:
    """`value`, at most 1, rounded down to 0.0001 (a goal shows 1 only once reached)."""
    scaled = math.floor(min(value, Fraction(1)) * 10**PROGRESS_PLACES)
    return Decimal(f"{scaled}E-{PROGRESS_PLACES}")


def challenge_progress(mwh_completed: int, goal_mwh: int) -> Decimal:
    """A challenge's progress as shown: mwh_completed / goal_mwh, at most 1, rounded down."""
    return _ratio(progress(mwh_completed, goal_mwh))


def milestones_of(conn: Connection, plant: PlantView) -> dict[str, Any]:
    """`{"milestones": [...], "challenges": [...]}` of a plant, exact values."""
    book = _book(plant)
    events = {e.event_id: e for e in goals_repo.stored_events(conn, plant.id)}
    _, completed = energy_of(repo.load_state(conn), plant.id)
    minted = goals_repo.completion_times(conn, plant.id, book.awaiting(completed))
    milestones = []
    for m in book.milestones:
        event = events.get(milestone_id(plant.id, m.mwh))
        at = event.at_us if event is not None else minted.get(m.mwh)
        milestones.append(
            {"mwh": m.mwh, "title": m.title, "reached_at": None if at is None else rfc3339(at)}
        )
    challenges = []
    for c in book.challenges:
        settled: StoredEvent | None = events.get(challenge_id(plant.id, c.id))
        challenges.append(
            {
                "id": c.id,
                "title": c.title,
                "goal_mwh": c.goal_mwh,
                "deadline": rfc3339(c.deadline_us),
                "sponsor": c.sponsor,
                "status": str(Status.OPEN) if settled is None else settled.status,
                "progress": challenge_progress(completed, c.goal_mwh),
                "at": None if settled is None else rfc3339(settled.at_us),
            }
        )
    return {"milestones": milestones, "challenges": challenges}


def next_milestone(plant: PlantView, e_mwh: int, completed: int) -> dict[str, Any] | None:
    """The first milestone not reached yet, with E's progress toward it; None: all reached."""
    for m in _book(plant).milestones:
        if m.mwh > completed:
            share = Fraction(e_mwh, m.mwh * MWH_IN_MWH_UNITS)
            return {"mwh": m.mwh, "title": m.title, "progress": _ratio(share)}
    return None


def banner(conn: Connection, plant: str, now_us: int) -> dict[str, Any] | None:
    """The latest milestone or challenge reached less than 24 h before `now_us` (a missed
    challenge is no banner): `{"kind", "id", "title", "at", "until"}` and the milestone's
    `mwh` or the challenge's `goal_mwh` and `sponsor`; None when there is none."""
    best: StoredEvent | None = None
    for e in goals_repo.stored_events(conn, plant):
        fresh = e.status == "reached" and e.at_us > now_us - BANNER_US
        if fresh and (best is None or (e.at_us, e.row_id) > (best.at_us, best.row_id)):
            best = e
    if best is None:
        return None
    body = json.loads(best.body)
    out = {
        "kind": best.kind,
        "id": best.event_id,
        "title": body["title"],
        "at": rfc3339(best.at_us),
        "until": rfc3339(best.at_us + BANNER_US),
    }
    keep = ("mwh",) if best.kind == "milestone" else ("goal_mwh", "sponsor")
    return {**out, **{k: body[k] for k in keep}}


def dashboard_goals(
    conn: Connection, plant: PlantView, e_mwh: int, completed: int, now_us: int
) -> dict[str, Any]:
    """The plant's goals and impact for data.json (decimals as strings, like the rest of it):
    `impact`, `milestones`, `next_milestone`, `challenges` and `banner` (docs/dashboard.md)."""
    listed = milestones_of(conn, plant)
    impact = impact_figures(plant.impact, e_mwh)
    following = next_milestone(plant, e_mwh, completed)
    return {
        "impact": None if impact is None else _texts(impact),
        "milestones": listed["milestones"],
        "next_milestone": None if following is None else _texts(following),
        "challenges": [_texts(c) for c in listed["challenges"]],
        "banner": banner(conn, plant.id, now_us),
    }


def _texts(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}
