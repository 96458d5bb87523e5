"""`heliod ledger verify`: every invariant of the ledger checked from what is stored.

The checks (docs/accounting.md, "Invariants"): conservation, the undistributed bound,
fairness, no negative credit and no MWh minted twice, each credit against exact
entitlements from the raw register rows (rewards/verify.py), each mint's register
position against the rows' stored times and each stored push body against the ledger
(rewards/verify_stored.py), and a replay of the stored readings, register, decisions and
clock resets that must give the same mints, anomalies, accountant state and milestone
and challenge events (determinism; docs/milestones.md, "Replays"). Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, select

from heliod.adapters.store import goals_repo, log_repo
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.adapters.store.clocks import clock_resets_after
from heliod.adapters.store.retention import RETENTION
from heliod.adapters.store.store import get_position
from heliod.rewards.goals import (
    ChallengeSettled,
    GoalBook,
    GoalEvent,
    PlantGoals,
    challenge_id,
    replay_events,
)
from heliod.rewards.ledger import Ledger, LedgerState, Outcome, PlantBook
from heliod.rewards.units import mwh_to_wh
from heliod.rewards.verify import verify_plant
from heliod.rewards.verify_log import StoredCheckpoint, StoredLeaf, verify_log
from heliod.rewards.verify_stored import (
    GoalRow,
    StoredRow,
    challenge_terms,
    check_events,
    check_goal_events,
    check_positions,
)


def verify_ledger(
    conn: Connection,
    books: Sequence[PlantBook],
    goals: Sequence[PlantGoals] = (),
    logs: Mapping[str, tuple[str, str | None]] | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """(problems, per-plant summary) of the ledger in `conn`'s snapshot; no problem: valid.

    `logs`: per plant, its log's origin and the gateway's verifier key (None: no key
    file), to check the verifiable log too (docs/verification.md); each stored
    checkpoint is checked with the recorded key that signed it, under that key's name."""
    problems: list[str] = []
    summary: dict[str, Any] = {}
    stored = repo.load_state(conn)
    problems += _replay(conn, books, stored, goals)
    for book in books:
        plant = book.rules.id
        mints = repo.mint_records(conn, plant)
        credits = repo.credits_by_mint(conn, plant)
        problems += verify_plant(
            plant,
            units_per_mwh=book.units_per_mwh,
            mints=mints,
            credits=credits,
            rows=repo.share_rows(conn, plant),
            balances=repo.balances_of(conn, plant),
        )
        times = [StoredRow(i, at) for i, at in repo.share_times(conn, plant)]
        problems += check_positions(plant, mints, times)
        problems += check_events(
            plant,
            symbol=book.symbol,
            decimals=book.decimals,
            mints=mints,
            credits=credits,
            events=repo.mint_events(conn, plant),
        )
        problems += check_goal_events(
            plant,
            [_goal_row(e) for e in goals_repo.stored_events(conn, plant)],
            {m.mwh_index: m.completed_at_us for m in mints},
        )
        if logs is not None and plant in logs:
            vkey = logs[plant][1]
            problems += _verify_log(conn, plant, vkey, mints=mints, credits=credits)
        summary[plant] = {
            "mints": len(mints),
            "credits": sum(len(c) for c in credits.values()),
            "energy_wh": mwh_to_wh(stored.plants[plant].e_mwh) if plant in stored.plants else 0,
        }
        if logs is not None and plant in logs:  # which keys the checkpoints were checked with
            summary[plant]["log_keys"] = [
                {"vkey": v, "from_size": size} for v, size in log_repo.keys(conn, plant)
            ]
    return problems, summary


def _verify_log(
    conn: Connection,
    plant: str,
    vkey: str | None,
    *,
    mints: Sequence[Any],
    credits: Mapping[int, Mapping[str, int]],
) -> list[str]:
    """The plant's log against its stored mints, credits and register (rewards/verify_log.py)."""
    known = [v for v, _size in log_repo.keys(conn, plant)]
    vkeys = known + ([vkey] if vkey is not None and vkey not in known else [])
    leaves = [StoredLeaf(r.index, r.leaf, r.leaf_hash) for r in log_repo.leaf_rows(conn, plant)]
    checkpoints = [
        StoredCheckpoint(c.size, c.root, c.note) for c in log_repo.checkpoints(conn, plant)
    ]
    return verify_log(
        plant,
        vkeys=vkeys,
        mints=mints,
        credits=credits,
        rows=repo.share_rows(conn, plant),
        leaves=leaves,
        checkpoints=checkpoints,
    )


def _replay_start(conn: Connection, stored: LedgerState) -> LedgerState | None:
    """Where a replay can start: from scratch, or after pruning, from the ledger state
    stored with the oldest mint whose batch started past every pruned reading (None:
    no such mint, nothing left to replay)."""
    pruned = get_position(conn, RETENTION)
    if pruned == 0:
        return LedgerState()
    m = t.mints.c
    for (text,) in conn.execute(select(m.state_before).order_by(m.id)):
        state = LedgerState.from_json(text)
        if state.position >= pruned:
            return state
    return None


def _replay(
    conn: Connection, books: Sequence[PlantBook], stored: LedgerState, goals: Sequence[PlantGoals]
) -> list[str]:
    """Replay readings and decisions up to the stored position and compare (inv. 5)."""
    problems: list[str] = []
    Ledger((b.rules for b in books), stored)  # gives a never-saved state its plant entries
    b, h = t.energy_buckets.c, t.energy_hourly.c
    for plant, energy in stored.plants.items():
        buckets = sum(int(e) for (e,) in conn.execute(select(b.e_mwh).where(b.plant == plant)))
        if buckets != energy.e_mwh:
            problems.append(f"{plant}: energy buckets hold {buckets} mWh, E is {energy.e_mwh}")
        hourly = sum(int(e) for (e,) in conn.execute(select(h.e_mwh).where(h.plant == plant)))
        if hourly != energy.e_mwh:
            problems.append(f"{plant}: hourly energy holds {hourly} mWh, E is {energy.e_mwh}")
    start = _replay_start(conn, stored)
    if start is None:
        return problems
    ledger = Ledger((b.rules for b in books), start)
    first_k = {p: e.mwh_completed for p, e in ledger.state.plants.items()}
    devices = sorted({d for b in books for d in b.rules.energy_devices})
    decisions = [
        d
        for d in repo.decisions_after(conn, start.last_decision_id)
        if d.id <= stored.last_decision_id
    ]
    resets = [
        r for r in clock_resets_after(conn, start.last_reset_id) if r.id <= stored.last_reset_id
    ]
    mints: list[tuple[str, int, int]] = []
    anomalies: set[tuple[str, str, int]] = set()
    readings = repo.stream_energy_readings(conn, devices, stored.position, after=start.position)

    def outcomes() -> Iterator[Outcome]:
        for out in ledger.run(readings, decisions, True, stored.position, resets):
            mints.extend((m.plant, m.mwh_index, m.completed_at_us) for m in out.mints)
            if out.anomaly is not None:
                anomalies.add((str(out.anomaly.kind), out.anomaly.device, out.anomaly.reading_id))
            yield out

    problems += _replay_goals(conn, goals, ledger, outcomes(), first_k)
    m = t.mints.c
    have = [
        (p, int(k), int(c))
        for p, k, c in conn.execute(select(m.plant, m.mwh_index, m.completed_at_us))
        if int(k) > first_k.get(p, 0)
    ]
    if sorted(have) != sorted(mints):
        missing = sorted(set(mints) - set(have))[:5]
        extra = sorted(set(have) - set(mints))[:5]
        problems.append(
            f"replay: mints differ from a replay (missing {missing}, unexplained {extra})"
        )
    a = t.anomalies.c
    seen = {(k, d, int(r)) for k, d, r in conn.execute(select(a.kind, a.device, a.reading_id))}
    # A replay from a checkpoint also re-judges the readings pending at its start.
    newer = {x for x in seen if x[2] > start.position}
    if not anomalies <= seen or not newer <= anomalies:
        problems.append(
            f"replay: anomalies differ (missing {sorted(anomalies - seen)[:5]}, "
            f"unexplained {sorted(newer - anomalies)[:5]})"
        )
    ledger.state.position = stored.position
    if ledger.state.to_json() != stored.to_json():
        problems.append(
            "replay: the accountant's stored state differs from a replay of the readings"
        )
    return problems


def _replay_goals(
    conn: Connection,
    goals: Sequence[PlantGoals],
    ledger: Ledger,
    outcomes: Iterator[Outcome],
    first_k: dict[str, int],
) -> list[str]:
    """Drive the replay's outcomes and compare the goal events they give with the stored
    ones (status and time; titles may have been edited since). Events committed before a
    replay that starts after pruning are taken as they are."""
    stored = goals_repo.stored_events(conn)
    before = {e.event_id for e in stored if e.after_mint <= first_k.get(e.plant, 0)}
    if not any(first_k.values()):
        before = set()  # a replay from scratch explains every event
    books = {g.plant: _as_stored(g, stored).book(before) for g in goals}
    placements = [e.placement for e in stored if e.placement and e.event_id not in before]
    replayed = replay_events(ledger.state, outcomes, books, placements)
    for plant, book in books.items():  # goals configured after their mint, as the accountant
        done = ledger.state.plants[plant].mwh_completed
        replayed += book.catch_up(goals_repo.completion_times(conn, plant, book.awaiting(done)))
    want = {e.id: _outcome(e) for e in replayed}
    have = {
        e.event_id: (e.status, e.at_us)
        for e in stored
        if e.event_id not in before and _configured(books.get(e.plant), e.kind, e.goal)
    }
    if want == have:
        return []
    missing = sorted(set(want) - set(have))[:5]
    extra = sorted(set(have) - set(want))[:5]
    changed = sorted(k for k in set(want) & set(have) if want[k] != have[k])[:5]
    return [
        f"replay: goal events differ (missing {missing}, unexplained {extra}, "
        f"different status or time {changed}; was a goal's configuration changed after "
        "its event?)"
    ]


def _goal_row(e: goals_repo.StoredEvent) -> GoalRow:
    return GoalRow(
        e.event_id, e.kind, e.goal, e.status, e.at_us, e.after_mint, e.placement is not None, e.body
    )


def _as_stored(goals: PlantGoals, stored: Sequence[goals_repo.StoredEvent]) -> PlantGoals:
    """The plant's goals with each settled challenge's goal and deadline as its stored event
    states them: the configuration may have been edited since, the event stays as sent."""
    bodies = {e.event_id: e.body for e in stored if e.kind == "challenge"}
    challenges = []
    for c in goals.challenges:
        body = bodies.get(challenge_id(goals.plant, c.id))
        terms = None if body is None else challenge_terms(body)
        if terms is not None:
            c = replace(c, goal_mwh=terms[0], deadline_us=terms[1])  # noqa: PLW2901
        challenges.append(c)
    return replace(goals, challenges=tuple(challenges))


def _outcome(event: GoalEvent) -> tuple[str, int]:
    if isinstance(event, ChallengeSettled):
        return str(event.status), event.at_us
    return "reached", event.reached_at_us


def _configured(book: GoalBook | None, kind: str, goal: str) -> bool:
    """A stored event of a goal no longer configured is not checked."""
    if book is None:
        return False
    if kind == "milestone":
        return any(str(m.mwh) == goal for m in book.milestones)
    return any(c.id == goal for c in book.challenges)
