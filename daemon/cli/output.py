"""Printing command results: aligned text for people, `--json` for programs."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, TextIO

from heliod.rewards.exact_json import dumps


def print_json(data: Any, out: TextIO | None = None) -> None:
    """Write `data` as JSON on stdout."""
    (out or sys.stdout).write(dumps(data) + "\n")


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO | None = None
) -> None:
    """Write rows as left-aligned text columns (numbers right-aligned)."""
    body = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    stream = out or sys.stdout
    stream.write(
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n"
    )
    for row, raw in zip(body, rows if isinstance(rows, list) else body, strict=False):
        cells = []
        for cell, w, value in zip(row, widths, raw, strict=True):
            numeric = isinstance(value, int | Decimal) and not isinstance(value, bool)
            cells.append(cell.rjust(w) if numeric else cell.ljust(w))
        stream.write("  ".join(cells).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
