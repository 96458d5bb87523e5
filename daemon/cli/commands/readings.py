"""`readings import` (backfill through the same path as live readings) and `readings list`."""

from __future__ import annotations

import argparse
from collections import Counter

from heliod.daemon.boot.settings import export_lines, plant_book
from heliod.daemon.cli.commands.context import Context, UsageError, now_us
from heliod.daemon.cli.commands.register import read_text
from heliod.daemon.cli.csv_input import parse_readings
from heliod.daemon.cli.output import print_json, print_table
from heliod.daemon.config import Plant
from heliod.daemon.read.readings import Accounted, device_readings, stored_keys
from heliod.rewards.readings import ENERGY, POWER, Reading
from heliod.rewards.times import parse_time, to_us
from heliod.rewards.units import wh_to_mwh


def _key(reading: Reading) -> tuple[int, int | None, int | None] | None:
    """What a stored copy of this row would hold; None for a row that cannot be stored."""
    if not reading.fields.keys() <= {ENERGY, POWER}:
        return None
    if not all(v.is_finite() for v in reading.fields.values()):
        return None  # rejected again, and said so
    energy, power = reading.fields.get(ENERGY), reading.fields.get(POWER)
    return (
        to_us(reading.ts),
        None if energy is None else wh_to_mwh(energy),
        None if power is None else wh_to_mwh(power),
    )


def import_readings(ctx: Context, args: argparse.Namespace) -> int:
    """Parse the whole file first (nothing stored if a row is malformed), then ingest it.

    Rows stored before (the same time and values) are skipped and said "already stored":
    importing a file twice changes nothing.
    """
    device_id, path = args.device, args.file
    plant, _device_config = ctx.device(device_id)
    readings = parse_readings(read_text(path), device_id, plant.tz, name=path)
    if readings:
        with ctx.store.read() as conn:
            known = stored_keys(conn, device_id, (to_us(r.ts) for r in readings))
        new = [
            r for r in readings if not r.fields.keys() <= {ENERGY, POWER} or _key(r) not in known
        ]
    else:
        new = []
    again = len(readings) - len(new)
    # Rendered for the export as the daemon does, when [influxdb] is configured.
    ctx.store.export_lines = export_lines(ctx.config)
    result = ctx.store.ingest(new, now_us())
    reasons = Counter(item.reason for item in result.rejected)
    if ctx.json:
        print_json(
            {
                "device": device_id,
                "rows": len(readings),
                "stored": result.stored,
                "already_stored": again,
                "rejected": len(result.rejected),
                "rejected_by_reason": dict(sorted(reasons.items())),
            }
        )
    else:
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        print(
            f"{device_id}: {len(readings)} rows, {result.stored} stored"
            + (f", {again} already stored" if again else "")
            + (f", {len(result.rejected)} rejected ({detail})" if result.rejected else "")
        )
    return 0


def _time(name: str, text: str | None, plant: Plant) -> int | None:
    if text is None:
        return None
    try:
        return to_us(parse_time(text, plant.tz))
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


def list_readings(ctx: Context, args: argparse.Namespace) -> int:
    """A device's stored readings with their status, newest last."""
    plant, device = ctx.device(args.device)
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    book = plant_book(plant)
    accounted = Accounted(device.id in book.rules.energy_devices, book.rules.start_us)
    with ctx.store.read() as conn:
        items = device_readings(
            conn,
            device.id,
            accounted,
            from_us=_time("--from", args.from_, plant),
            to_us=_time("--to", args.to, plant),
            limit=args.limit,
        )
    if ctx.json:
        print_json({"device": device.id, "readings": items})
        return 0
    names = sorted({name for item in items for name in item["fields"]})
    print_table(
        ["at", "status", *names],
        [[i["at"], i["status"], *(i["fields"].get(n) for n in names)] for i in items],
    )
    return 0
