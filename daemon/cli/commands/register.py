"""`backers import` and `backers list`."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from decimal import Context as DecimalContext
from fractions import Fraction
from pathlib import Path

from heliod.adapters.clock import utc_now
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.cli.commands.context import Context, UsageError, now_us
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.cli.output import print_json, print_table
from heliod.rewards.register import Register
from heliod.rewards.times import from_us, parse_time, rfc3339, to_us

SHARE_PLACES = 12
_EXACT = DecimalContext(prec=2000)


def read_text(path: str) -> str:
    """A data file's text, or a usage error naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None


def import_backers(ctx: Context, args: argparse.Namespace) -> int:
    """Load share-register rows; all valid or none stored; importing twice changes nothing."""
    plant_id, path = args.plant, args.file
    plant = ctx.plant(plant_id)
    rows = parse_register(read_text(path), plant.tz, name=path)
    with ctx.store.write() as conn:
        result = apply_rows(conn, plant.id, rows, now_us())
    if ctx.json:
        print_json(
            {
                "plant": plant.id,
                "rows": len(rows),
                "added": result.added,
                "unchanged": result.unchanged,
            }
        )
    else:
        print(
            f"{plant.id}: {len(rows)} rows read, {result.added} added, {result.unchanged} unchanged"
        )
    return 0


def list_backers(ctx: Context, args: argparse.Namespace) -> int:
    """Weights and shares in force at a time (default: now), as the next mint would see them."""
    plant_id, at = args.plant, args.at
    plant = ctx.plant(plant_id)
    try:
        when = parse_time(at, plant.tz) if at else utc_now()
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None
    with ctx.store.read() as conn:
        register = Register()
        register.extend(repo.share_rows_stream(conn, plant.id))
    weights = register.weights_at(to_us(when), register.last_id)
    total = _exact_sum(weights.values())
    items = []
    for backer in sorted(weights):
        share = Fraction(weights[backer]) / Fraction(total)
        items.append({"backer": backer, "weight": weights[backer], "share": _decimal_share(share)})
    if ctx.json:
        print_json(
            {"plant": plant.id, "at": rfc3339(to_us(when)), "total_weight": total, "backers": items}
        )
    else:
        local = from_us(to_us(when)).astimezone(plant.tz).isoformat()
        print(f"{plant.id} at {rfc3339(to_us(when))} ({local}): total weight {total}")
        print_table(
            ["backer", "weight", "share"], [[i["backer"], i["weight"], i["share"]] for i in items]
        )
    return 0


def _decimal_share(share: Fraction) -> Decimal:
    return _EXACT.divide(Decimal(share.numerator), Decimal(share.denominator)).quantize(
        Decimal(1).scaleb(-SHARE_PLACES), rounding=ROUND_HALF_EVEN
    )


def _exact_sum(values: Iterable[Decimal]) -> Decimal:
    """Sum of decimals with no rounding, whatever their number of digits."""
    total = Decimal(0)
    for v in values:
        total = _EXACT.add(total, v)
    return total
