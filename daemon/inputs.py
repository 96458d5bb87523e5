"""Parsing the CSV files people hand to heliod: share registers and reading backfills.

Every row is checked before anything is stored; a file with any bad row is refused whole,
with one line per problem naming the line number and the column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Context, Decimal, InvalidOperation

from heliod.rewards.readings import ENERGY, POWER, Reading
from heliod.rewards.register import BEGINNING_US
from heliod.rewards.times import parse_time, to_us
from heliod.rewards.units import quantize

BACKER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,127}$")
MAX_ROWS_SHOWN = 20
_WIDE = Context(prec=1000)


class InputError(Exception):
    """A data file heliod refuses, with one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One share-register row as given: from `valid_from_us` on, `backer` financed `amount`."""

    backer: str
    amount: Decimal
    valid_from_us: int


def _rows(
    text: str, required: Sequence[str], optional: Sequence[str], name: str
) -> list[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError([f"{name}: empty file, expected a header {','.join(required)}"]) from None
    columns = [h.strip() for h in header]
    missing = [c for c in required if c not in columns]
    unknown = [c for c in columns if c not in required and c not in optional]
    if missing or unknown or len(set(columns)) != len(columns):
        expected = ",".join([*required, *(f"[{c}]" for c in optional)])
        raise InputError([f"{name}: line 1: header must be {expected}, got {','.join(columns)}"])
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


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return value


def parse_register(text: str, tz: tzinfo, name: str = "register") -> list[RegisterRow]:
    """Rows of a share register CSV (`backer,amount[,valid_from]`), all valid or none."""
    problems: list[str] = []
    rows: list[RegisterRow] = []
    seen: dict[tuple[str, int], int] = {}
    for line_no, row in _rows(text, ("backer", "amount"), ("valid_from",), name):
        where = f"{name}: line {line_no}"
        if "" in row:
            problems.append(f"{where}: {row['']}")
            continue
        backer = row["backer"]
        if not BACKER_ID.match(backer):
            problems.append(f"{where}: backer: not a valid backer id: {backer!r}")
            continue
        try:
            amount = _decimal(row["amount"])
        except ValueError as exc:
            problems.append(f"{where}: amount: {exc}")
            continue
        if amount < 0:
            problems.append(f"{where}: amount: must be ≥ 0, got {row['amount']}")
            continue
        vf_text = row.get("valid_from", "")
        try:
            valid_from = BEGINNING_US if not vf_text else to_us(parse_time(vf_text, tz))
        except ValueError as exc:
            problems.append(f"{where}: valid_from: {exc}")
            continue
        key = (backer, valid_from)
        if key in seen:
            problems.append(
                f"{where}: backer {backer} already has a row for this valid_from "
                f"on line {seen[key]}"
            )
            continue
        seen[key] = line_no
        # normalize() in a context wide enough that no digit of a weight is ever rounded
        rows.append(
            RegisterRow(backer, amount.normalize(_WIDE) if amount else Decimal(0), valid_from)
        )
    if problems:
        raise InputError(problems[:MAX_ROWS_SHOWN])
    return rows


def parse_readings(text: str, device: str, tz: tzinfo, name: str = "readings") -> list[Reading]:
    """Rows of a readings CSV (`timestamp,energy_wh[,power_w]`), all well-formed or none.

    Values that are well-formed but refused by §4 (negative, not after the last reading,
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
                fields[field] = quantize(Decimal(raw))
            except InvalidOperation:
                problems.append(f"{where}: {column}: not a number: {raw!r}")
        if len(problems) >= MAX_ROWS_SHOWN:
            break
        out.append(Reading(device, ts, fields))
    if problems:
        raise InputError(problems[:MAX_ROWS_SHOWN])
    return out


def format_problems(lines: Iterable[str]) -> str:
    """Problems one per line."""
    return "\n".join(lines)
