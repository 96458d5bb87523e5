"""The share register in the store: idempotent imports of effective-dated weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, insert, select

from heliod.adapters.store import schema as t
from heliod.rewards.register_rows import RegisterRow


class RegisterRefused(Exception):
    """Rows that are well-formed but make no sense against the stored register."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Counts of one register import."""

    added: int
    unchanged: int


def apply_rows(
    conn: Connection, plant: str, rows: Sequence[RegisterRow], now_us: int
) -> ImportResult:
    """Store the rows that change the register, inside the caller's writer transaction.

    A row equal to the newest stored row for the same backer and valid_from changes
    nothing and is skipped, so importing the same file twice is a no-op. A different
    amount for an existing (backer, valid_from) is a correction: stored as a new row,
    which wins over the older one for mints committed after it.
    """
    s = t.shares.c
    latest: dict[tuple[str, int], Decimal] = {}
    known: set[str] = set()
    for backer, weight, valid_from in conn.execute(
        select(s.backer, s.weight, s.valid_from_us).where(s.plant == plant).order_by(s.id)
    ):
        latest[(backer, valid_from)] = Decimal(weight)
        known.add(backer)
    problems = []
    for row in rows:
        if (
            row.amount == 0
            and row.backer not in known
            and not any(r.backer == row.backer and r.amount > 0 for r in rows)
        ):
            problems.append(
                f"unknown backer {row.backer!r}: a 0 amount ends a share, "
                f"but {row.backer} never held one in plant {plant}"
            )
    if problems:
        raise RegisterRefused(problems)
    fresh = []
    for row in rows:
        if latest.get((row.backer, row.valid_from_us)) == row.amount:
            continue
        fresh.append(
            {
                "plant": plant,
                "backer": row.backer,
                "weight": str(row.amount),
                "valid_from_us": row.valid_from_us,
                "stored_us": now_us,
            }
        )
        latest[(row.backer, row.valid_from_us)] = row.amount
    if fresh:
        conn.execute(insert(t.shares), fresh)
    return ImportResult(added=len(fresh), unchanged=len(rows) - len(fresh))
