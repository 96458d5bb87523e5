"""Printing command results: aligned text for people, `--json` for programs."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, TextIO

from heliod.daemon.cli.commands.context import UsageError
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


def confirm(question: str, yes: bool, verb: str) -> bool:
    """True when `--yes` was given or the operator answers yes on the terminal.

    Without a terminal and without `--yes` nothing can be confirmed: a usage error
    (exit 2) saying to pass `--yes`.
    """
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"no terminal to confirm on: pass --yes to {verb}")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in {"y", "yes", "o", "oui"}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
