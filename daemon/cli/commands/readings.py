"""`readings import`: backfill a device's counter through the same path as live readings."""

from __future__ import annotations

from collections import Counter

from heliod.daemon.boot.settings import export_lines
from heliod.daemon.cli.commands.context import Context, UsageError, now_us
from heliod.daemon.cli.commands.register import read_text
from heliod.daemon.cli.csv_input import parse_readings
from heliod.daemon.cli.output import print_json


def import_readings(ctx: Context, device_id: str, path: str) -> int:
    """Parse the whole file first (nothing stored if a row is malformed), then ingest it."""
    try:
        plant, _device = ctx.config.device(device_id)
    except KeyError:
        known = ", ".join(d.id for _, d in ctx.config.devices())
        raise UsageError(f"unknown device {device_id!r} (configured: {known})") from None
    readings = parse_readings(read_text(path), device_id, plant.tz, name=path)
    # Rendered for the export as the daemon does, when [influxdb] is configured.
    ctx.store.export_lines = export_lines(ctx.config)
    result = ctx.store.ingest(readings, now_us())
    reasons = Counter(reason for _, reason in result.rejected)
    if ctx.json:
        print_json(
            {
                "device": device_id,
                "rows": len(readings),
                "stored": result.stored,
                "rejected": len(result.rejected),
                "rejected_by_reason": dict(sorted(reasons.items())),
            }
        )
    else:
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        print(
            f"{device_id}: {len(readings)} rows, {result.stored} stored, "
            f"{len(result.rejected)} rejected" + (f" ({detail})" if detail else "")
        )
    return 0
