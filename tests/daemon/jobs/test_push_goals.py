"""Milestone and challenge events ride the mints' outbox: each once, after its mint, signed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from heliod.adapters.store import goals_repo
from heliod.daemon.cli.commands.platform import render_status
from heliod.daemon.jobs.push import sync_retry
from heliod.daemon.read.deliveries import sync_counts, sync_status
from tests.daemon.jobs.test_push import pusher, run_until, stored
from tests.daemon.ledger_fixture import SECRET, Ledger, make_ledger
from tests.daemon.platform_server import Platform

GOALS = """
[[plants.milestones]]
mwh = 1

[[plants.milestones]]
mwh = 2
title = "Deux MWh"

[[plants.challenges]]
id = "three"
title = "3 MWh: the school gets a bench"
goal_mwh = 3
deadline = "2030-01-01T00:00:00"
sponsor = "Mairie"
"""
# alpha: its mints, each followed by the events it caused; beta has the default milestones.
ALPHA = [
    "alpha:1",
    "alpha:milestone:1",
    "alpha:2",
    "alpha:milestone:2",
    "alpha:3",
    "alpha:challenge:three",
    "alpha:4",
]
BETA = ["beta:1", "beta:milestone:1", "beta:2", "beta:3"]


@pytest.fixture
def platform() -> Iterator[Platform]:
    """The platform, listening."""
    server = Platform(SECRET).start()
    yield server
    server.stop()


def goal_ledger(tmp_path: Path, platform: Platform, url: str | None = None) -> Ledger:
    """Four MWh of alpha and three of beta with their goal events, none delivered."""
    ledger = make_ledger(tmp_path, url, push_url=platform.url, alpha_goals=GOALS)
    ledger.goals = True
    ledger.produce("alpha", 2)
    ledger.produce("alpha", 2)  # two accounting runs: events follow their mint either way
    ledger.produce("beta", 3)
    return ledger


def outbox(ledger: Ledger) -> dict[str, bytes]:
    """Every push body as committed: mints and goal events."""
    with ledger.store.read() as conn:
        goals = {e.event_id: e.body.encode() for e in goals_repo.stored_events(conn)}
    return {**stored(ledger), **goals}


def test_goal_events_follow_their_mints_once_each_through_faults(
    tmp_path: Path, platform: Platform
) -> None:
    ledger = goal_ledger(tmp_path, platform)
    platform.faults.extend(["503", "drop", "ok", "timeout", "429", "ok", "drop", "500", "409"])
    run_until(pusher(ledger, platform), lambda: sync_counts(ledger.store)["pending"] == 0)
    bodies = outbox(ledger)
    assert platform.events == bodies  # each event, keyed by its id, received
    for r in platform.received:
        assert r.signed
        assert r.body == bodies[r.key]  # resends are the committed bytes
    for plant, order in (("alpha", ALPHA), ("beta", BETA)):
        arrived = [k for k in platform.arrivals() if k.startswith(f"{plant}:")]
        assert list(dict.fromkeys(arrived)) == order  # in order, resends in place
    body = json.loads(bodies["alpha:challenge:three"])
    assert body == {
        "event": "challenge",
        "id": "alpha:challenge:three",
        "plant": "alpha",
        "challenge": "three",
        "title": "3 MWh: the school gets a bench",
        "goal_mwh": 3,
        "deadline": "2029-12-31T23:00:00Z",  # Europe/Paris
        "sponsor": "Mairie",
        "status": "reached",
        "at": json.loads(bodies["alpha:3"])["completed_at"],
    }
    assert json.loads(bodies["alpha:milestone:2"])["title"] == "Deux MWh"
    status = sync_status(ledger.store)
    assert status["plants"]["alpha"]["goal_events"] == 3
    assert (status["delivered"], status["pending"], status["rejected"]) == (11, 0, 0)
    ledger.store.close()


def test_a_rejected_goal_event_is_parked_and_retried_by_its_id(
    db_url: str, tmp_path: Path, platform: Platform
) -> None:
    ledger = goal_ledger(tmp_path, platform, db_url)  # SQLite and PostgreSQL
    platform.reject.add("alpha:milestone:2")
    run_until(pusher(ledger, platform), lambda: sync_counts(ledger.store)["pending"] == 0)
    assert [k for k in platform.arrivals() if k.startswith("alpha")] == ALPHA  # went on
    status = sync_status(ledger.store)
    [parked] = status["rejected_events"]
    assert parked["id"] == "alpha:milestone:2"
    assert "alpha:milestone:2" in render_status(status)
    with pytest.raises(LookupError):
        sync_retry(ledger.store, "alpha:milestone:7")
    with pytest.raises(ValueError, match="PLANT:milestone:MWH"):
        sync_retry(ledger.store, "alpha:milestone:x")
    platform.reject.clear()
    assert sync_retry(ledger.store, "alpha:milestone:2") == 1
    assert sync_status(ledger.store)["plants"]["alpha"]["next"]["id"] == "alpha:milestone:2"
    run_until(pusher(ledger, platform), lambda: sync_counts(ledger.store)["pending"] == 0)
    assert platform.arrivals()[-1] == "alpha:milestone:2"
    assert platform.events == outbox(ledger)
    ledger.store.close()
