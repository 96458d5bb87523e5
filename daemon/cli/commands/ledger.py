"""`account`, `balances`, `ledger verify`, `ledger export`."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from heliod.daemon.boot.settings import all_goals, log_signer, plant_books
from heliod.daemon.cli.commands.context import Context, Failure, UsageError, now_us
from heliod.daemon.cli.output import print_json, print_table
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.read.ledger import export_rows
from heliod.daemon.read.plants import balances as balances_of
from heliod.daemon.read.verify import verify_ledger


def account(ctx: Context, args: argparse.Namespace) -> int:
    """Account every stored reading the rules allow, mint and credit, then exit."""
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    config = ctx.config
    accountant = Accountant(
        ctx.store,
        plant_books(config),
        now_us,
        args.batch_size,
        goals=all_goals(config),
        log=log_signer(config),
    )
    result = accountant.run()
    data = {
        "readings": result.readings,
        "anomalies": result.anomalies,
        "mints": [{"plant": p, "mwh_index": k} for p, k in result.mints],
        "position": result.position,
    }
    if ctx.json:
        print_json(data)
    else:
        minted = ", ".join(f"{p}:{k}" for p, k in result.mints) or "none"
        print(
            f"accounted {result.readings} readings up to reading {result.position}; "
            f"{result.anomalies} anomalies; MWh minted: {minted}"
        )
    return 0


def balances(ctx: Context, args: argparse.Namespace) -> int:
    """Print balances per plant and backer (with each backer's CO2 share when the plant
    has [plants.impact], and the factor's source)."""
    plant_id = args.plant
    books = [b for b in plant_books(ctx.config) if plant_id is None or b.rules.id == plant_id]
    if plant_id is not None:
        ctx.plant(plant_id)
    with ctx.store.read() as conn:
        data = []
        for b in books:
            section = ctx.config.plant(b.rules.id).impact
            impact = None if section is None else section.rules()
            data.append(
                balances_of(
                    conn,
                    b.rules.id,
                    b.symbol,
                    b.decimals,
                    impact=impact,
                    units_per_mwh=b.units_per_mwh,
                )
            )
    if ctx.json:
        print_json(data)
        return 0
    rows: list[list[Any]] = []
    co2 = any("impact" in p for p in data)
    for p in data:
        for b in p["balances"]:
            rows.append([p["plant"], b["backer"], b["units"], b["amount"]])
            if co2:
                rows[-1].append(b.get("co2_avoided_kg"))
        rows.append(
            [
                p["plant"],
                "(undistributed)",
                p["undistributed"]["units"],
                p["undistributed"]["amount"],
                *([None] if co2 else []),
            ]
        )
    print_table(["plant", "backer", "units", "amount", *(["co2_avoided_kg"] if co2 else [])], rows)
    for p in data:
        if "impact" in p:
            factor = p["impact"]
            print(f"{p['plant']}: CO2 at {factor['co2_g_per_kwh']} g/kWh, {factor['source']}")
    return 0


def verify(ctx: Context, _args: argparse.Namespace) -> int:
    """Check every invariant of the ledger and replay it; exit 1 with a report on failure."""
    logs = _log_keys(ctx)
    with ctx.store.read() as conn:
        problems, summary = verify_ledger(
            conn, plant_books(ctx.config), all_goals(ctx.config), logs
        )
    ok = not problems
    if ctx.json:
        print_json({"ok": ok, "problems": problems, "plants": summary})
    elif ok:
        for plant, s in summary.items():
            print(f"{plant}: {s['mints']} mints, {s['credits']} credits, E = {s['energy_wh']} Wh")
            for key in s.get("log_keys", []):
                print(f"  checkpoints from size {key['from_size']} signed by {key['vkey']}")
        print(
            "ledger verify: OK (conservation, bounds, fairness, no negative or double mint, "
            "replay, the verifiable log and its signed checkpoints)"
        )
    else:
        print(f"ledger verify: {len(problems)} problem(s)", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
    if not ok:
        raise Failure("ledger verify failed")
    return 0


def _log_keys(ctx: Context) -> dict[str, tuple[str, str | None]]:
    """Per plant, its log's origin and the gateway's verifier key (None: no key file yet;
    the keys recorded with the log still check its checkpoints)."""
    config = ctx.config
    path = config.log.signing_key_file
    signer = log_signer(config, create=False) if path is not None and path.exists() else None
    return {
        p.id: (config.log.origin(p.id), None if signer is None else signer.vkey(p.id))
        for p in config.plants
    }


def export(ctx: Context, args: argparse.Namespace) -> int:
    """Print every mint and credit as CSV or JSON."""
    fmt = args.format
    books = {b.rules.id: b for b in plant_books(ctx.config)}
    with ctx.store.read() as conn:
        rows = list(export_rows(conn, books))
    if ctx.json or fmt == "json":
        print_json({"mints": rows})
        return 0
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(
        [
            "record",
            "plant",
            "mwh_index",
            "completed_at",
            "symbol",
            "backer",
            "units",
            "amount",
            "undistributed_units",
        ]
    )
    for r in rows:
        out.writerow(
            [
                "mint",
                r["plant"],
                r["mwh_index"],
                r["completed_at"],
                r["symbol"],
                "",
                r["units"],
                r["amount"],
                r["undistributed_units"],
            ]
        )
        for c in r["credits"]:
            out.writerow(
                [
                    "credit",
                    r["plant"],
                    r["mwh_index"],
                    r["completed_at"],
                    r["symbol"],
                    c["backer"],
                    c["units"],
                    c["amount"],
                    "",
                ]
            )
    return 0
