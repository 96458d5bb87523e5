"""`ledger verify` beyond the numbers: what each mint recorded of its register and its push.

- Register positions: a mint credits with the register rows stored before its
  transaction (docs/accounting.md, "Who gets the units"). Its recorded position must be
  one of the plant's rows (or 0), never go back, and agree with the rows' stored times:
  rows up to it stored at or before the mint's commit time, the next one at or after.
  Times are compared within each stretch in which the gateway's clock went forward (the
  rows' stored times and the mints' commit times each in order): across a jump back
  they prove nothing and the order of ids still does, but a jump leaves the stretches
  before and after it checked.
- Push bodies (docs/platform.md, "The push"): the bytes fixed at commit must say what
  the ledger says: the mint, its units, its credits and the undistributed balance, with
  exactly the contract's keys.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from heliod.rewards.verify import MintRecord


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A register row's id and when it was stored (µs)."""

    id: int
    stored_us: int


def check_positions(
    plant: str, mints: Sequence[MintRecord], rows: Sequence[StoredRow]
) -> list[str]:
    """Problems with the register positions the mints recorded (empty: none)."""
    problems: list[str] = []
    ordered = sorted(mints, key=lambda m: m.mwh_index)
    by_id = sorted(rows, key=lambda r: r.id)
    ids = {r.id for r in by_id}
    previous = 0
    for m in ordered:
        if m.register_pos != 0 and m.register_pos not in ids:
            problems.append(
                f"{plant}: mint {m.mwh_index} records register position {m.register_pos}, "
                "which is no row of the plant's register"
            )
        if m.register_pos < previous:
            problems.append(
                f"{plant}: mint {m.mwh_index} records register position {m.register_pos}, "
                f"before the {previous} of an earlier mint"
            )
        previous = max(previous, m.register_pos)
    return problems + _check_times(plant, ordered, by_id)


@dataclass(slots=True)
class _Event:
    """A register row or a mint, in the order the ids and positions say they happened."""

    at_us: int | None
    row: StoredRow | None = None
    mint: MintRecord | None = None
    stretch: int = 0  # the clock went back before each new stretch
    judged: bool = True  # False: a clock jump lies between it and its neighbours


def _causal(ordered: Sequence[MintRecord], by_id: Sequence[StoredRow]) -> list[_Event]:
    """Rows and mints in causal order: a mint after every row up to its position."""
    events: list[_Event] = []
    row_ids = [r.id for r in by_id]
    done = 0
    for m in ordered:
        upto = max(done, bisect_right(row_ids, m.register_pos))
        events += [_Event(r.stored_us, row=r) for r in by_id[done:upto]]
        done = upto
        events.append(_Event(m.committed_us, mint=m))
    events += [_Event(r.stored_us, row=r) for r in by_id[done:]]
    return events


def _check_times(
    plant: str, ordered: Sequence[MintRecord], by_id: Sequence[StoredRow]
) -> list[str]:
    """Rows up to a mint's position stored at or before its commit, later ones at or after,
    judged within each stretch of time in which the clock went forward.

    The clock went back where the rows' stored times (by id) or the mints' commit times
    (by number) go back: a new stretch begins there, and the events between the two that
    show it (the mints between two such rows, the rows between two such mints) are not
    judged by time. A mint without a commit time is not judged either.
    """
    events = _causal(ordered, by_id)
    stretch = 0
    last: dict[bool, int] = {}  # is_row -> index of the previous event of that kind
    for i, e in enumerate(events):
        is_row = e.row is not None
        if e.at_us is None:
            e.judged = False
            e.stretch = stretch
            continue
        j = last.get(is_row)
        # Compared within the current stretch only: one jump is seen once.
        if j is not None and events[j].stretch == stretch and e.at_us < int(events[j].at_us or 0):
            stretch += 1
            for between in events[j + 1 : i]:
                between.judged = False
        e.stretch = stretch
        last[is_row] = i
    problems: list[str] = []
    for i, e in enumerate(events):
        m = e.mint
        if m is None or not e.judged or e.at_us is None:
            continue
        committed = e.at_us
        before = _nearest_row(events, range(i - 1, -1, -1), e.stretch)
        after = _nearest_row(events, range(i + 1, len(events)), e.stretch)
        if before is not None and before.stored_us > committed:
            problems.append(
                f"{plant}: mint {m.mwh_index} (committed at {committed} µs) used register "
                f"row {before.id}, stored after it at {before.stored_us} µs"
            )
        if after is not None and after.stored_us < committed:
            problems.append(
                f"{plant}: mint {m.mwh_index} (committed at {committed} µs) left out register "
                f"row {after.id}, stored before it at {after.stored_us} µs"
            )
    return problems


def _nearest_row(events: Sequence[_Event], order: range, stretch: int) -> StoredRow | None:
    """The nearest judged row in `order` within `stretch` (None: none before it ends)."""
    for k in order:
        e = events[k]
        if e.stretch != stretch:
            return None
        if e.row is not None:
            return e.row if e.judged else None
    return None


def _time_us(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    delta = t - datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _whole(value: Any) -> int | None:
    """A JSON integer (parsed exactly), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# The mint event's keys (docs/platform.md, "The push"); the signed log's `log` may come too.
MINT_KEYS = frozenset(
    {
        "event",
        "id",
        "plant",
        "mwh_index",
        "completed_at",
        "symbol",
        "decimals",
        "units",
        "credits",
        "undistributed_units",
    }
)
CREDIT_KEYS = frozenset({"backer", "units"})


def check_events(
    plant: str,
    *,
    symbol: str,
    decimals: int,
    mints: Sequence[MintRecord],
    credits: Mapping[int, Mapping[str, int]],
    events: Mapping[int, str],
) -> list[str]:
    """Problems with the stored push bodies (empty: each says what the ledger says)."""
    problems: list[str] = []
    minted = credited = 0
    for m in sorted(mints, key=lambda m: m.mwh_index):
        k = m.mwh_index
        given = dict(credits.get(k, {}))
        minted += m.units
        credited += sum(given.values())
        text = events.get(k)
        try:
            body = json.loads(text or "", parse_float=Decimal)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            problems.append(f"{plant}: mint {k}: its stored push body is not a JSON object")
            continue
        if set(body) - {"log"} != MINT_KEYS:
            problems.append(
                f"{plant}: mint {k}: the stored push body has keys {sorted(body)}, "
                f"a mint event has {sorted(MINT_KEYS)}"
            )
            continue
        pushed = body.get("credits")
        pairs = (
            [
                (c.get("backer"), _whole(c.get("units")))
                if isinstance(c, dict) and set(c) == CREDIT_KEYS
                else (None, None)
                for c in pushed
            ]
            if isinstance(pushed, list)
            else None
        )
        expected: list[tuple[str, Any, Any]] = [
            ("event", body.get("event"), "mint"),
            ("id", body.get("id"), f"{plant}:{k}"),
            ("plant", body.get("plant"), plant),
            ("mwh_index", _whole(body.get("mwh_index")), k),
            ("completed_at", _time_us(body.get("completed_at")), m.completed_at_us),
            ("symbol", body.get("symbol"), symbol),
            ("decimals", _whole(body.get("decimals")), decimals),
            ("units", _whole(body.get("units")), m.units),
            ("credits", pairs, sorted(given.items())),
            ("undistributed_units", _whole(body.get("undistributed_units")), minted - credited),
        ]
        wrong = [(name, got, want) for name, got, want in expected if got != want]
        if wrong:
            name, got, want = wrong[0]
            problems.append(
                f"{plant}: mint {k}: the stored push body's {name} is {got!r}, "
                f"the ledger says {want!r}"
            )
    return problems


@dataclass(frozen=True, slots=True)
class GoalRow:
    """A stored milestone or challenge event as `ledger verify` reads it."""

    event_id: str
    kind: str  # milestone | challenge
    goal: str  # the milestone's mwh or the challenge's id
    status: str  # reached | missed
    at_us: int
    after_mint: int
    by_clock: bool  # a challenge missed by an accounting run's clock (it has a placement)
    body: str


MILESTONE_KEYS = frozenset({"event", "id", "plant", "mwh", "title", "reached_at"})
CHALLENGE_KEYS = frozenset(
    {
        "event",
        "id",
        "plant",
        "challenge",
        "title",
        "goal_mwh",
        "deadline",
        "sponsor",
        "status",
        "at",
    }
)


def challenge_terms(body: str) -> tuple[int, int] | None:
    """(goal_mwh, deadline µs) as a stored challenge event states them; None: unreadable."""
    try:
        fields = json.loads(body, parse_float=Decimal)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    goal, deadline = _whole(fields.get("goal_mwh")), _time_us(fields.get("deadline"))
    return None if goal is None or deadline is None else (goal, deadline)


def check_goal_events(
    plant: str, events: Sequence[GoalRow], completed_at: Mapping[int, int]
) -> list[str]:
    """Problems with the stored milestone and challenge push bodies (empty: each is exactly
    the event its row records, with the contract's keys, and agrees with the mints;
    `completed_at`: the plant's mints, mwh_index → completion time µs)."""
    problems: list[str] = []
    for e in events:
        wrong = _goal_problem(plant, e, completed_at)
        if wrong is not None:
            problems.append(f"{plant}: event {e.event_id}: {wrong}")
    return problems


def _goal_problem(plant: str, e: GoalRow, completed_at: Mapping[int, int]) -> str | None:
    try:
        body = json.loads(e.body, parse_float=Decimal)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return "its stored push body is not a JSON object"
    keys = MILESTONE_KEYS if e.kind == "milestone" else CHALLENGE_KEYS
    if set(body) != keys:
        return f"the stored push body has keys {sorted(body)}, a {e.kind} event has {sorted(keys)}"
    texts = ["title"] if e.kind == "milestone" else ["title", "sponsor"]
    for name in texts:
        if not isinstance(body[name], str):
            return f"the stored push body's {name} is {body[name]!r}, not a text"
    if e.kind == "milestone":
        mwh = _whole(body["mwh"])
        goal, deadline = mwh, None
        expected: list[tuple[str, Any, Any]] = [
            ("event", body["event"], "milestone"),
            ("mwh", mwh, int(e.goal) if e.goal.isdigit() else e.goal),
            ("reached_at", _time_us(body["reached_at"]), e.at_us),
        ]
        own_id = f"{plant}:milestone:{e.goal}"
    else:
        goal, deadline = _whole(body["goal_mwh"]), _time_us(body["deadline"])
        expected = [
            ("event", body["event"], "challenge"),
            ("challenge", body["challenge"], e.goal),
            ("status", body["status"], e.status),
            ("at", _time_us(body["at"]), e.at_us),
        ]
        own_id = f"{plant}:challenge:{e.goal}"
    expected += [("id", body["id"], e.event_id), ("plant", body["plant"], plant)]
    for name, got, want in expected:
        if got != want:
            return f"the stored push body's {name} is {body[name]!r}, its row says {want!r}"
    if e.event_id != own_id:
        return f"the row's id is not {own_id!r}"
    if goal is None or goal < 1:
        name = "mwh" if e.kind == "milestone" else "goal_mwh"
        return f"the stored push body's {name} is {body[name]!r}, not a MWh number"
    if e.kind == "milestone":
        return _reached_problem(e, goal, completed_at)
    if deadline is None:
        return f"the stored push body's deadline is {body['deadline']!r}, not a time"
    return _settled_problem(e, goal, deadline, completed_at)


def _reached_problem(e: GoalRow, goal: int, completed_at: Mapping[int, int]) -> str | None:
    """A goal reached by mint `goal`: at its completion time, pushed after it."""
    mint = completed_at.get(goal)
    if mint is None:
        return f"reached by mint {goal}, which does not exist"
    if e.at_us != mint:
        return f"reached at {e.at_us} µs, but mint {goal} completed at {mint} µs"
    if e.after_mint < goal:
        return f"pushed after mint {e.after_mint}, before mint {goal} that reached it"
    return None


def _settled_problem(
    e: GoalRow, goal: int, deadline: int, completed_at: Mapping[int, int]
) -> str | None:
    """A challenge's outcome against its own stored terms and the mints."""
    mint = completed_at.get(goal)
    if e.status == "reached":
        if mint is not None and mint > deadline:
            return (
                f"reached by mint {goal} completed at {mint} µs, after its deadline {deadline} µs"
            )
        return _reached_problem(e, goal, completed_at)
    if e.status != "missed":
        return f"status {e.status!r} is neither reached nor missed"
    if e.at_us != deadline:
        return f"missed at {e.at_us} µs, not at its deadline {deadline} µs"
    if not e.by_clock and (mint is None or mint <= deadline):
        return f"missed by mint {goal}, which completed at {mint} µs, not after its deadline"
    return None
