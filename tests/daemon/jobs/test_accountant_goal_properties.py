"""The real accountant (daemon/jobs/accountant.py) over a real store commits each
milestone and challenge event once, never misses one, and gives the events a replay
gives, however its runs are cut (docs/milestones.md).

Hypothesis draws a reading stream of two inverters (tests/rewards/test_goals_properties.py
builds it: steady production, repeated values, implausible jumps), the plant's goals, and
how the daemon meets them: when the readings are stored, when accounting runs (at a
clock between the last stored reading and the next one, as a live gateway's), how many
readings one transaction takes (1 to 7), whether a run is cut short and the daemon
restarted (a new Accountant), and which quarantined jumps the operator accepts or
rejects between runs. After a last run long after every deadline:

- never duplicated: one stored row per event id (the store would also refuse a second);
- never missing, and right: the stored bodies are exactly those the final mints give
  read literally (a milestone per mint of its number; a challenge reached iff its goal's
  mint completed at or before its deadline, else missed at the deadline), so a challenge
  the clock settled as missed is never reached later by energy dated before it;
- in order: an event caused by a mint is stored after it; a missed event decided by the
  clock after an earlier mint;
- `ledger verify` finds nothing: its replay gives the same events, and every stored body
  has exactly its keys and agrees with the mints.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.read.verify import verify_ledger
from heliod.rewards.goals import (
    ChallengeSettled,
    GoalEvent,
    MilestoneReached,
    PlantGoals,
    Status,
)
from heliod.rewards.ledger import Decision, PlantBook
from heliod.rewards.readings import Reading
from tests.rewards.test_goals_properties import PLANT, build, goals, ops

S = 1_000_000
H = 3600 * S
BOOK = PlantBook(PLANT, units_per_mwh=1, symbol="SLR", decimals=0)
PROPERTY = settings(
    max_examples=max(10, int(os.environ.get("HELIOD_HYPOTHESIS_EXAMPLES", "150")) // 4),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def reading(row: tuple[int, str, int, int | None, int | None]) -> Reading:
    _, device, ts_us, mwh, _ = row
    assert mwh is not None
    ts = datetime.fromtimestamp(ts_us // S, UTC).replace(microsecond=ts_us % S)
    return Reading(device, ts, {"energy_wh": Decimal(mwh).scaleb(-3)})


def model(goals_: PlantGoals, mints: dict[int, int]) -> dict[str, str]:
    """docs/milestones.md read literally over the final mints, every deadline passed and
    nothing left that could still add energy."""
    book = goals_.book()
    out: list[GoalEvent] = [
        MilestoneReached("p", m, mints[m.mwh]) for m in book.milestones if m.mwh in mints
    ]
    for c in book.challenges:
        done = mints.get(c.goal_mwh)
        if done is not None and done <= c.deadline_us:
            out.append(ChallengeSettled("p", c, Status.REACHED, done))
        else:
            out.append(ChallengeSettled("p", c, Status.MISSED, c.deadline_us))
    return {e.id: json.dumps(e.body(), separators=(",", ":")) for e in out}


@PROPERTY
@given(st.data(), ops)
def test_the_accountant_stores_each_event_once_whatever_its_runs(
    data: st.DataObject, draws: list[tuple[object, ...]]
) -> None:
    tl = build(draws)
    rows = [x for x in tl.items if not isinstance(x, Decision)]  # the operator decides here
    drawn = data.draw(goals(tl))
    n = len(rows)
    cuts = sorted(data.draw(st.sets(st.integers(1, n), max_size=n)))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'heliod.db'}")
        try:
            with store.write() as conn:
                apply_rows(conn, "p", parse_register("backer,amount\nx,1\ny,2\n", UTC), 0)
            clock = [rows[0][2]]
            accountant = Accountant(store, [BOOK], lambda: clock[0], 5000, goals=[drawn])
            stored = 0
            for cut in [*cuts, None]:
                upto = n if cut is None else cut
                if upto > stored:
                    batch = [reading(r) for r in rows[stored:upto]]
                    store.ingest(batch, rows[upto - 1][2])
                    stored = upto
                last = rows[stored - 1][2]
                if cut is None:  # at last: readings that confirm every pending one
                    final = last + H
                    clock[0] = final
                    confirm = [
                        Reading(d, datetime.fromtimestamp(final // S, UTC), {"energy_wh": v})
                        for d, v in _counters(rows).items()
                    ]
                    store.ingest(confirm, final)
                    clock[0] = final + 1000 * 24 * H
                else:  # a clock between the last stored reading and the next one
                    nxt = rows[stored][2] if stored < n else last + 3 * H
                    clock[0] = max(
                        clock[0], last + (nxt - last) * data.draw(st.integers(0, 1000)) // 1000
                    )
                _decide(store, data, clock[0])
                if data.draw(st.booleans()):  # a restart: nothing kept in memory
                    accountant = Accountant(store, [BOOK], lambda: clock[0], 5000, goals=[drawn])
                accountant.batch_size = data.draw(st.integers(1, 7))
                if cut is not None and data.draw(st.booleans()):
                    accountant.run(max_batches=1)  # a run cut short; the next goes on
                else:
                    accountant.run()
            with store.read() as conn:
                events = conn.execute(
                    select(
                        t.events.c.event_id,
                        t.events.c.body,
                        t.events.c.after_mint,
                        t.events.c.position,
                    )
                ).all()
                mints = {m.mwh_index: m.completed_at_us for m in repo.mint_records(conn, "p")}
                problems, _ = verify_ledger(conn, [BOOK], [drawn])
        finally:
            store.close()
    ids = [e.event_id for e in events]
    assert len(ids) == len(set(ids))  # never duplicated
    assert {e.event_id: e.body for e in events} == model(drawn, mints)  # never missing
    _check_order(events, drawn)
    assert problems == []
    for e in events:
        body: dict[str, Any] = json.loads(e.body)
        by_clock = "by clock" if e.position is not None else ""
        event(f"{body['event']} {body.get('status', '')} {by_clock}")


def _counters(rows: list[tuple[int, str, int, int | None, int | None]]) -> dict[str, Decimal]:
    last: dict[str, Decimal] = {}
    for _, device, _, mwh, _ in rows:
        assert mwh is not None
        last[device] = Decimal(mwh).scaleb(-3)
    return last


def _decide(store: Store, data: st.DataObject, now_us: int) -> None:
    """The operator accepts or rejects some of the quarantined jumps, now."""
    a = t.anomalies.c
    with store.read() as conn:
        open_ids = [
            int(i)
            for (i,) in conn.execute(select(a.id).where(a.status == "quarantined").order_by(a.id))
        ]
    for anomaly_id in open_ids:
        choice = data.draw(st.sampled_from(("wait", "accept", "reject")))
        if choice != "wait":
            with store.write() as conn:
                repo.decide(conn, anomaly_id, choice == "accept", now_us)
            event(f"a jump {choice}ed")


def _check_order(events: Any, drawn: PlantGoals) -> None:
    goal_of = {f"p:challenge:{c.id}": c.goal_mwh for c in drawn.challenges}
    for e in events:
        if e.event_id.startswith("p:milestone:"):
            assert e.after_mint == int(e.event_id.rsplit(":", 1)[1])
        elif e.position is None:
            assert e.after_mint == goal_of[e.event_id]
        else:
            assert e.after_mint < goal_of[e.event_id]
            assert json.loads(e.body)["status"] == "missed"
