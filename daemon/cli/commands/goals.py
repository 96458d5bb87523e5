"""`milestones`: each plant's milestones and challenges with their status (docs/milestones.md)."""

from __future__ import annotations

import argparse
from typing import Any

from heliod.daemon.boot.settings import http_settings
from heliod.daemon.cli.commands.context import Context
from heliod.daemon.cli.output import print_json, print_table
from heliod.daemon.read.goals import milestones_of


def milestones(ctx: Context, args: argparse.Namespace) -> int:
    """Print the milestones and challenges of every plant (or of one)."""
    plant_id = args.plant
    if plant_id is not None:
        ctx.plant(plant_id)
    views = [v for v in http_settings(ctx.config).plants if plant_id in (None, v.id)]
    with ctx.store.read() as conn:
        data = [{"plant": v.id, **milestones_of(conn, v)} for v in views]
    if ctx.json:
        print_json(data)
        return 0
    reached: list[list[Any]] = []
    open_or_settled: list[list[Any]] = []
    for p in data:
        for m in p["milestones"]:
            reached.append([p["plant"], m["mwh"], m["title"], m["reached_at"]])
        for c in p["challenges"]:
            open_or_settled.append(
                [
                    p["plant"],
                    c["id"],
                    c["status"],
                    f"{c['progress'] * 100:.2f} %",
                    c["goal_mwh"],
                    c["deadline"],
                    c["at"],
                    c["sponsor"],
                    c["title"],
                ]
            )
    print_table(["plant", "mwh", "milestone", "reached_at"], reached)
    if open_or_settled:
        print()
        headers = ["plant", "challenge", "status", "progress", "goal_mwh", "deadline", "at"]
        print_table([*headers, "sponsor", "title"], open_or_settled)
    return 0
