"""`ledger verify` beyond the numbers: what each mint recorded of its register and its push.

- Register positions: a mint credits with the register rows stored before its
  transaction (docs/accounting.md, "Who gets the units"). Its recorded position must be
  one of the plant's rows (or 0), never go back, and agree with the rows' stored times:
  rows up to it stored at or before the mint's commit time, the next one at or after.
  Times are compared only while the gateway's clock went forward (the rows' stored
  times and the mints' commit times each in order): after a clock jump they prove
  nothing, and the order of ids still does.
- Push bodies (docs/platform.md, "The push"): the bytes fixed at commit must say what
  the ledger says: the mint, its units, its credits and the undistributed balance.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

from heliod.rewards.verify import MintRecord


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A register row's id and when it was stored (µs)."""

    id: int
    stored_us: int


def _in_order(values: Sequence[int]) -> bool:
    return all(a <= b for a, b in pairwise(values))


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
    commits = [m.committed_us for m in ordered]
    if any(c is None for c in commits):
        return problems
    timed = [int(c) for c in commits if c is not None]
    if not (_in_order([r.stored_us for r in by_id]) and _in_order(timed)):
        return problems  # the clock went back: times cannot order rows and mints
    row_ids = [r.id for r in by_id]
    for m, committed in zip(ordered, timed, strict=True):
        n = bisect_right(row_ids, m.register_pos)  # rows up to the position: by_id[:n]
        last = by_id[n - 1] if n else None
        later = by_id[n] if n < len(by_id) else None
        if last is not None and last.stored_us > committed:
            problems.append(
                f"{plant}: mint {m.mwh_index} (committed at {committed} µs) used register "
                f"row {last.id}, stored after it at {last.stored_us} µs"
            )
        if later is not None and later.stored_us < committed:
            problems.append(
                f"{plant}: mint {m.mwh_index} (committed at {committed} µs) left out register "
                f"row {later.id}, stored before it at {later.stored_us} µs"
            )
    return problems


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
        pushed = body.get("credits")
        pairs = (
            [(c.get("backer"), _whole(c.get("units"))) for c in pushed if isinstance(c, dict)]
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
