"""The share register in the store: idempotent imports of effective-dated weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, select

from heliod.adapters.store import schema as t
from heliod.rewards.numbers import brief, describe
from heliod.rewards.register import AMOUNT_PLACES, MAX_AMOUNT, is_register_amount
from heliod.rewards.register_rows import RegisterRow

MAX_SHOWN = 20  # problems listed in one refusal; the rest are counted


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
    which wins over the older one for mints committed after it. Linear in the rows
    given and stored: the caller holds the store's only writer.
    """
    s = t.shares.c
    latest: dict[tuple[str, int], Decimal] = {}
    known: set[str] = set()
    for backer, weight, valid_from in conn.execute(
        select(s.backer, s.weight, s.valid_from_us).where(s.plant == plant).order_by(s.id)
    ):
        latest[(backer, valid_from)] = Decimal(weight)
        known.add(backer)
    problems = _refusals(plant, rows, known)
    if problems:
        raise RegisterRefused(problems)
    fresh = []
    for row in rows:
        if latest.get((row.backer, row.valid_from_us)) == row.amount:
            continue
        fresh.append((plant, row.backer, str(row.amount), row.valid_from_us, now_us))
        latest[(row.backer, row.valid_from_us)] = row.amount
    if fresh:
        # Driver-level executemany: an answer may hold 100,000 rows, and per-row statement
        # processing would cost more than the write itself (docs/performance.md).
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(
            "INSERT INTO shares (plant, backer, weight, valid_from_us, stored_us) "
            + f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
            fresh,
        )
    return ImportResult(added=len(fresh), unchanged=len(rows) - len(fresh))


def _refusals(plant: str, rows: Sequence[RegisterRow], known: set[str]) -> list[str]:
    """Amounts out of bounds, and 0 amounts for backers who never held a share."""
    problems = []
    holders = known | {row.backer for row in rows if row.amount > 0}
    for row in rows:
        if not is_register_amount(row.amount):  # the parsers refuse it first, naming the line
            problems.append(
                f"backer {row.backer!r}: amount {brief(row.amount)} is not "
                f"{describe(Decimal(0), MAX_AMOUNT, AMOUNT_PLACES)}"
            )
        if row.amount == 0 and row.backer not in holders:
            problems.append(
                f"unknown backer {row.backer!r}: a 0 amount ends a share, "
                f"but {row.backer} never held one in plant {plant}"
            )
    if len(problems) > MAX_SHOWN:
        problems[MAX_SHOWN:] = [f"… and {len(problems) - MAX_SHOWN} more problems"]
    return problems
