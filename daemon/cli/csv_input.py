"""Parsing the CSV files people hand to heliod: share registers and reading backfills.

Every row is checked before anything is stored; a file with any bad row is refused whole,
with one line per problem naming the line number and the column. The rules of a
register row are the domain's (rewards/register_rows.py), shared with the register pull.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import tzinfo
from decimal import Decimal, InvalidOperation

from heliod.rewards.numbers import brief, describe
from heliod.rewards.readings import ENERGY, POWER, Reading
from heliod.rewards.register_rows import (
    MAX_PROBLEMS_SHOWN,
    InputError,
    RegisterRow,
    RowText,
    register_rows,
)
from heliod.rewards.times import parse_time
from heliod.rewards.units import quantize

__all__ = ["InputError", "RegisterRow", "parse_readings", "parse_register"]

MAX_ROWS_SHOWN = MAX_PROBLEMS_SHOWN
# Far beyond any counter (the store rejects energy above 10^15 Wh, counted like a live
# reading's), yet small enough that every value is rounded exactly, once, to 0.001.
READING_LIMIT = Decimal(10) ** 18
_READING_RANGE = describe(-READING_LIMIT, READING_LIMIT)


def _rows(
    text: str, required: Sequence[str], optional: Sequence[str], name: str
) -> list[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        return _read(reader, required, optional, name)
    except csv.Error as exc:  # e.g. a field longer than the csv module's 131,072 characters
        raise InputError([f"{name}: line {reader.line_num}: not CSV: {exc}"]) from None


def _read(
    reader: Iterator[list[str]], required: Sequence[str], optional: Sequence[str], name: str
) -> list[tuple[int, dict[str, str]]]:
    try:
        header = next(reader)
    except StopIteration:
        raise InputError([f"{name}: empty file, expected a header {','.join(required)}"]) from None
    columns = [h.strip() for h in header]
    missing = [c for c in required if c not in columns]
    unknown = [c for c in columns if c not in required and c not in optional]
    if missing or unknown or len(set(columns)) != len(columns):
        expected = ",".join([*required, *(f"[{c}]" for c in optional)])
        raise InputError(
            [f"{name}: line 1: header must be {expected}, got {brief(','.join(columns))}"]
        )
    out: list[tuple[int, dict[str, str]]] = []
    for line_no, values in enumerate(reader, start=2):
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(columns):
            # Reported in line order with the value problems the caller finds.
            out.append((line_no, {"": f"{len(values)} columns, expected {len(columns)}"}))
            continue
        out.append((line_no, {c: v.strip() for c, v in zip(columns, values, strict=True)}))
    return out


def parse_register(text: str, tz: tzinfo, name: str = "register") -> list[RegisterRow]:
    """Rows of a share register CSV (`backer,amount[,valid_from]`), all valid or none."""
    rows = [
        RowText(f"{name}: line {line_no}", f"line {line_no}", row, row.get(""))
        for line_no, row in _rows(text, ("backer", "amount"), ("valid_from",), name)
    ]
    return register_rows(rows, tz)


def parse_readings(text: str, device: str, tz: tzinfo, name: str = "readings") -> list[Reading]:
    """Rows of a readings CSV (`timestamp,energy_wh[,power_w]`), all well-formed or none.

    Values that are well-formed but refused (docs/accounting.md: negative, not after the last,
    in the future) are not errors here: the store rejects and counts them as it would for
    a live device.
    """
    problems: list[str] = []
    out: list[Reading] = []
    for line_no, row in _rows(text, ("timestamp", "energy_wh"), ("power_w",), name):
        where = f"{name}: line {line_no}"
        if "" in row:
            problems.append(f"{where}: {row['']}")
            continue
        try:
            ts = parse_time(row["timestamp"], tz)
        except ValueError as exc:
            problems.append(f"{where}: timestamp: {exc}")
            continue
        fields: dict[str, Decimal] = {}
        for column, field in (("energy_wh", ENERGY), ("power_w", POWER)):
            raw = row.get(column, "")
            if column == "power_w" and raw == "":
                continue
            try:
                fields[field] = reading_value(raw)
            except ValueError as exc:
                problems.append(f"{where}: {column}: {exc}")
        if len(problems) >= MAX_ROWS_SHOWN:
            break
        out.append(Reading(device, ts, fields))
    if problems:
        raise InputError(problems[:MAX_ROWS_SHOWN])
    return out


def reading_value(text: str) -> Decimal:
    """A reading's value from its text, rounded once, half to even, to 0.001 (as a live
    reading's); NaN and infinities pass, for the store to reject and count."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {brief(text)!r}") from None
    if value.is_finite() and not -READING_LIMIT <= value <= READING_LIMIT:
        raise ValueError(f"must be {_READING_RANGE}, got {brief(value)}")
    return quantize(value)


def format_problems(lines: Iterable[str]) -> str:
    """Problems one per line."""
    return "\n".join(lines)
