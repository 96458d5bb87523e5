"""Milestone and challenge events in the store: once each, exact bodies, push order."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import IntegrityError

from heliod.adapters.store import Store
from heliod.adapters.store import goals_repo as events
from heliod.adapters.store import ledger_repo as repo
from heliod.rewards.goals import (
    Challenge,
    ChallengeSettled,
    Milestone,
    MilestoneReached,
    Placement,
    Status,
)
from heliod.rewards.verify import MintRecord

T = 1_798_761_600_000_000  # 2027-01-01T00:00:00Z
TREES = Challenge("trees", "Des arbres plantés", 2, T + 1, "Ville de Brassemonte")


def test_events_are_stored_once_with_their_bodies_and_order(db_url: str) -> None:
    store = Store.open(db_url)
    missed = ChallengeSettled("p", TREES, Status.MISSED, TREES.deadline_us)
    first = MilestoneReached("p", Milestone(1, "1 MWh"), T)
    with store.write() as conn:
        for k in (1, 2):
            record = MintRecord("p", k, T + k, 1, 0, 1)
            repo.insert_mint(conn, record, event="{}", state_before="{}", now_us=T)
        events.insert_event(conn, first, after_mint=1, now_us=T)
        events.insert_event(
            conn, missed, after_mint=0, now_us=T, placement=Placement("p", "trees", 7, 2)
        )
    with pytest.raises(IntegrityError), store.write() as conn:
        events.insert_event(conn, first, after_mint=2, now_us=T)  # never twice
    with store.read() as conn:
        got = events.stored_events(conn, "p")
        assert events.event_ids(conn, "p") == {"p:milestone:1", "p:challenge:trees"}
        assert events.completion_times(conn, "p", [2, 1, 5]) == {1: T + 1, 2: T + 2}
        assert events.stored_events(conn, "other") == []
    store.close()
    # push order: the event before any mint first, then the one after mint 1
    assert [(e.event_id, e.after_mint, e.placement) for e in got] == [
        ("p:challenge:trees", 0, Placement("p", "trees", 7, 2)),
        ("p:milestone:1", 1, None),
    ]
    assert (got[0].kind, got[0].goal, got[0].status, got[0].at_us) == (
        "challenge",
        "trees",
        "missed",
        T + 1,
    )
    assert json.loads(got[0].body) == missed.body()
    assert "Ville de Brassemonte" in json.loads(got[0].body)["sponsor"]
    assert (got[1].kind, got[1].goal, got[1].status) == ("milestone", "1", "reached")
