"""Share-register rows as people and the platform hand them in (docs/cli.md, "backers import").

The same rules hold for a row of a CSV file and for a row of the platform's answer
(docs/platform.md, "Share register"): a valid backer id, an amount from 0 to 10^15 with at
most 9 decimal places (taken exactly: any other amount is refused, never rounded), an
optional RFC 3339 `valid_from` (no offset: the plant's timezone), and no two rows of one
backer for the same `valid_from`. Rows are checked
all at once: one bad row refuses them all, with one line per problem naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal, InvalidOperation

from heliod.rewards.numbers import brief
from heliod.rewards.register import BEGINNING_US, register_amount
from heliod.rewards.times import parse_time, to_us

BACKER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,127}$")
MAX_PROBLEMS_SHOWN = 20


class InputError(Exception):
    """Data heliod refuses (a file, an answer), with one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One share-register row as given: from `valid_from_us` on, `backer` financed `amount`."""

    backer: str
    amount: Decimal
    valid_from_us: int


@dataclass(frozen=True, slots=True)
class RowText:
    """One row as text, where it came from (`where` opens its problems, `ref` names it)."""

    where: str  # e.g. "backers.csv: line 5" or "alpha: backers[3]"
    ref: str  # e.g. "line 5" or "row [3]": how a later duplicate names this row
    values: Mapping[str, str]  # backer, amount, valid_from ("" or absent: not given)
    broken: str | None = None  # the row could not even be read (e.g. a wrong column count)


def decimal_of(text: str) -> Decimal:
    """An exact, finite decimal from its text; ValueError naming the text otherwise."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {brief(text)!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {brief(text)!r}")
    return value


def register_rows(rows: Iterable[RowText], tz: tzinfo) -> list[RegisterRow]:
    """The rows, all valid, or InputError with a line per problem (at most 20)."""
    problems: list[str] = []
    out: list[RegisterRow] = []
    seen: dict[tuple[str, int], str] = {}
    for row in rows:
        if row.broken is not None:
            problems.append(f"{row.where}: {row.broken}")
            continue
        backer = row.values.get("backer", "")
        if not BACKER_ID.fullmatch(backer):  # `$` alone would let a final newline through
            problems.append(f"{row.where}: backer: not a valid backer id: {brief(backer)!r}")
            continue
        try:
            amount = register_amount(decimal_of(row.values.get("amount", "")))
        except ValueError as exc:
            problems.append(f"{row.where}: amount: {exc}")
            continue
        vf_text = row.values.get("valid_from", "") or ""
        try:
            valid_from = BEGINNING_US if not vf_text else to_us(parse_time(vf_text, tz))
        except ValueError as exc:
            problems.append(f"{row.where}: valid_from: {exc}")
            continue
        key = (backer, valid_from)
        if key in seen:
            problems.append(
                f"{row.where}: backer {backer} already has a row for this valid_from "
                f"{'on' if seen[key].startswith('line') else 'in'} {seen[key]}"
            )
            continue
        seen[key] = row.ref
        out.append(RegisterRow(backer, amount, valid_from))
    if problems:
        raise InputError(problems[:MAX_PROBLEMS_SHOWN])
    return out
