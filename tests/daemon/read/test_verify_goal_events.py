"""`ledger verify` over the milestone and challenge events heliod commits: each stored
push body must say exactly what the event is (docs/milestones.md, "Events"), and a
challenge is judged by the terms stored with its event, not by a configuration edited
since (docs/milestones.md, "Goals added later")."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from heliod.adapters.store import schema as t
from heliod.daemon.boot.settings import all_goals, plant_books
from heliod.daemon.config import Config
from heliod.daemon.read.verify import verify_ledger
from tests.daemon.ledger_fixture import Ledger, make_ledger, write_config

GOALS = """
[[plants.milestones]]
mwh = 1

[[plants.milestones]]
mwh = 2

[[plants.challenges]]
id = "three"
title = "3 MWh: a bench"
goal_mwh = 3
deadline = "{three}"
sponsor = "Mairie"

[[plants.challenges]]
id = "early"
title = "9 MWh by noon"
goal_mwh = 9
deadline = "{early}"
sponsor = "Région"
"""
# Mint 3 completes at 02:00 UTC on 2024-03-01 (readings every 10 min from midnight).
AS_COMMITTED = {"three": "2030-01-01T00:00:00", "early": "2024-03-01T12:00:00"}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    book = make_ledger(tmp_path, alpha_goals=GOALS.format(**AS_COMMITTED))
    book.goals = True
    book.produce("alpha", 3)
    yield book
    book.store.close()


def problems(ledger: Ledger, config: Config | None = None) -> list[str]:
    config = config or ledger.config
    with ledger.store.read() as conn:
        found, _ = verify_ledger(conn, plant_books(config), all_goals(config))
    return found


def edit_body(ledger: Ledger, event_id: str, change: Callable[[dict[str, Any]], None]) -> None:
    e = t.events.c
    with ledger.store.write() as conn:
        body = json.loads(conn.execute(select(e.body).where(e.event_id == event_id)).scalar_one())
        change(body)
        text = json.dumps(body, separators=(",", ":"))
        conn.execute(update(t.events).where(e.event_id == event_id).values(body=text))


def test_the_events_as_committed_verify(ledger: Ledger) -> None:
    with ledger.store.read() as conn:
        stored = {r.event_id: r.status for r in conn.execute(select(t.events))}
    assert stored == {
        "alpha:milestone:1": "reached",
        "alpha:milestone:2": "reached",
        "alpha:challenge:three": "reached",
        "alpha:challenge:early": "missed",
    }
    assert problems(ledger) == []


def _extra(b: dict[str, Any]) -> None:
    b["bonus"] = 1


def _drop_sponsor(b: dict[str, Any]) -> None:
    del b["sponsor"]


def _reached_later(b: dict[str, Any]) -> None:
    b["reached_at"] = "2024-03-01T05:00:00Z"


def _title_number(b: dict[str, Any]) -> None:
    b["title"] = 2


def _other_plant(b: dict[str, Any]) -> None:
    b["plant"] = "beta"


def _status(b: dict[str, Any]) -> None:
    b["status"] = "missed"


def _at(b: dict[str, Any]) -> None:
    b["at"] = "2024-03-01T12:00:00Z"


def _deadline_before_mint(b: dict[str, Any]) -> None:
    b["deadline"] = "2024-03-01T01:00:00Z"


def _missed_at(b: dict[str, Any]) -> None:
    b["at"] = "2024-03-01T10:00:00Z"


@pytest.mark.parametrize(
    ("event_id", "change", "says"),
    [
        ("alpha:milestone:2", _extra, "keys"),
        ("alpha:challenge:three", _drop_sponsor, "keys"),
        ("alpha:milestone:2", _reached_later, "reached_at"),
        ("alpha:milestone:1", _title_number, "title"),
        ("alpha:milestone:1", _other_plant, "plant"),
        ("alpha:challenge:three", _status, "status"),
        ("alpha:challenge:three", _at, "at"),
        ("alpha:challenge:three", _deadline_before_mint, "after its deadline"),
        ("alpha:challenge:early", _missed_at, "at"),
    ],
)
def test_a_goal_event_body_that_says_something_else_is_reported(
    ledger: Ledger, event_id: str, change: Callable[[dict[str, Any]], None], says: str
) -> None:
    edit_body(ledger, event_id, change)
    found = problems(ledger)
    assert any(f"event {event_id}" in p and says in p for p in found), found


def test_a_challenge_is_judged_by_the_deadline_stored_with_its_event(
    ledger: Ledger, tmp_path: Path
) -> None:
    # The operator moves both deadlines after the events were sent: "three" now ends
    # before its mint, "early" years later. The events stay as sent, and verify judges
    # them by the deadlines they carry: the ledger is still valid.
    edited = write_config(
        tmp_path,
        alpha_goals=GOALS.format(three="2024-03-01T01:00:00", early="2035-01-01T00:00:00"),
    )
    assert problems(ledger, edited) == []
    # Its goal raised, too: judged by the stored goal.
    raised = write_config(
        tmp_path,
        alpha_goals=GOALS.replace("goal_mwh = 3", "goal_mwh = 30").format(**AS_COMMITTED),
    )
    assert problems(ledger, raised) == []
