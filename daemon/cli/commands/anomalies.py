"""`anomalies list`, `anomalies accept ID [--yes]`, `anomalies reject ID`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from heliod.adapters.store import Connection
from heliod.adapters.store import ledger_repo as repo
from heliod.daemon.cli.commands.context import Context, UsageError, now_us
from heliod.daemon.cli.output import confirm, print_json, print_table
from heliod.daemon.read.anomalies import all_anomalies, anomaly_item, anomaly_row
from heliod.rewards.ledger import WH_PER_MWH_IN_MWH
from heliod.rewards.times import rfc3339
from heliod.rewards.units import mwh_to_wh


def list_anomalies(ctx: Context, _args: argparse.Namespace) -> int:
    """Every anomaly with its status."""
    with ctx.store.read() as conn:
        items = all_anomalies(conn)
    if ctx.json:
        print_json(items)
        return 0
    print_table(
        [
            "id",
            "plant",
            "device",
            "kind",
            "status",
            "reading_at",
            "value_wh",
            "previous_wh",
            "delta_wh",
            "credited_wh",
        ],
        [
            [
                i["id"],
                i["plant"],
                i["device"],
                i["kind"],
                i["status"],
                i["reading_at"],
                i["value_wh"],
                i["previous_wh"],
                i["delta_wh"],
                i["credited_wh"],
            ]
            for i in items
        ],
    )
    return 0


def _quarantined(conn: Connection, anomaly_id: int) -> Any:
    row = anomaly_row(conn, anomaly_id)
    if row is None:
        raise UsageError(f"no anomaly with id {anomaly_id}")
    if row.kind != "implausible_jump" or row.status != "quarantined":
        raise UsageError(
            f"anomaly {anomaly_id} is {'an' if row.kind[0] in 'aeiou' else 'a'} {row.kind} "
            f"with status {row.status}: "
            "only a quarantined implausible_jump can be accepted or rejected"
        )
    return row


def accept(ctx: Context, args: argparse.Namespace) -> int:
    """Show what accepting would credit, ask, and record the decision."""
    anomaly_id, yes = args.id, args.yes
    with ctx.store.read() as conn:
        row = _quarantined(conn, anomaly_id)
        state = repo.load_state(conn)
    energy = state.plants.get(row.plant)
    e_now = energy.e_mwh if energy else 0
    done = energy.mwh_completed if energy else 0
    after = (e_now + int(row.delta_mwh)) // WH_PER_MWH_IN_MWH
    completes = list(range(done + 1, after + 1))
    print(
        f"anomaly {anomaly_id}: {row.device} jumped {mwh_to_wh(row.delta_mwh)} Wh "
        f"(from {mwh_to_wh(row.previous_mwh)} to {mwh_to_wh(row.value_mwh)} Wh "
        f"at {rfc3339(row.reading_at_us)}).\n"
        f"Accepting adds {mwh_to_wh(row.delta_mwh)} Wh to {row.plant} and would complete "
        + (
            f"MWh {completes[0]}..{completes[-1]}"
            if len(completes) > 1
            else f"MWh {completes[0]}"
            if completes
            else "no MWh"
        )
        + " (as of the last accounted reading).",
        file=sys.stderr if ctx.json else sys.stdout,
    )
    if not confirm("Accept this energy and credit it to the backers?", yes, "accept"):
        print("not accepted; nothing changed")
        return 1
    return _decide(ctx, anomaly_id, accept=True)


def reject(ctx: Context, args: argparse.Namespace) -> int:
    """Drop a quarantined jump for good."""
    return _decide(ctx, args.id, accept=False)


def _decide(ctx: Context, anomaly_id: int, *, accept: bool) -> int:
    with ctx.store.write() as conn:
        _quarantined(conn, anomaly_id)
        repo.decide(conn, anomaly_id, accept, now_us())
        row = anomaly_row(conn, anomaly_id)
    assert row is not None  # checked above, in the same transaction
    item = anomaly_item(row._mapping)
    if ctx.json:
        print_json(item)
    else:
        verb = "accepted: the accountant credits it on its next run" if accept else "rejected"
        print(f"anomaly {anomaly_id} {verb}")
    return 0
