"""`account`, `balances`, `ledger verify`, `ledger export`."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.adapters.store.retention import RETENTION
from heliod.adapters.store.store import get_position
from heliod.daemon.accountant import Accountant, PlantBook, plant_books
from heliod.daemon.commands.context import Context, Failure, now_us
from heliod.daemon.output import amount, print_json, print_table
from heliod.rewards.ledger import Ledger, LedgerState
from heliod.rewards.register import Register
from heliod.rewards.times import rfc3339
from heliod.rewards.units import mwh_to_wh
from heliod.rewards.verify import verify_plant


def account(ctx: Context, batch_size: int = 5000) -> int:
    """Account every stored reading §4 allows, mint and credit, then exit."""
    accountant = Accountant(ctx.store, plant_books(ctx.config), now_us, batch_size)
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


def plant_balances(conn: Connection, book: PlantBook) -> dict[str, Any]:
    """One plant's balances: every backer who ever held a share, zero included."""
    plant, d = book.rules.id, book.decimals
    undistributed = repo.undistributed_of(conn, plant)
    return {
        "plant": plant,
        "symbol": book.symbol,
        "decimals": d,
        "undistributed": {"units": undistributed, "amount": amount(undistributed, d)},
        "balances": [
            {"backer": b, "units": u, "amount": amount(u, d)}
            for b, u in sorted(repo.held_balances(conn, plant).items())
        ],
    }


def balances(ctx: Context, plant_id: str | None) -> int:
    """Print balances per plant and backer."""
    books = [b for b in plant_books(ctx.config) if plant_id is None or b.rules.id == plant_id]
    if plant_id is not None:
        ctx.plant(plant_id)
    with ctx.store.read() as conn:
        data = [plant_balances(conn, b) for b in books]
    if ctx.json:
        print_json(data)
        return 0
    rows: list[list[Any]] = []
    for p in data:
        rows.extend([p["plant"], b["backer"], b["units"], b["amount"]] for b in p["balances"])
        rows.append(
            [
                p["plant"],
                "(undistributed)",
                p["undistributed"]["units"],
                p["undistributed"]["amount"],
            ]
        )
    print_table(["plant", "backer", "units", "amount"], rows)
    return 0


def verify(ctx: Context) -> int:
    """Check every invariant of §5 and replay the ledger; exit 1 with a report on failure."""
    books = plant_books(ctx.config)
    problems: list[str] = []
    summary: dict[str, Any] = {}
    with ctx.store.read() as conn:
        stored = repo.load_state(conn)
        problems += _replay(conn, books, stored)
        for book in books:
            plant = book.rules.id
            register = Register(repo.share_rows(conn, plant))
            mints = repo.mint_records(conn, plant)
            credits = repo.credits_by_mint(conn, plant)
            problems += verify_plant(
                plant,
                units_per_mwh=book.units_per_mwh,
                mints=mints,
                credits=credits,
                register=register,
                balances=repo.balances_of(conn, plant),
            )
            summary[plant] = {
                "mints": len(mints),
                "credits": sum(len(c) for c in credits.values()),
                "energy_wh": mwh_to_wh(stored.plants[plant].e_mwh) if plant in stored.plants else 0,
            }
    ok = not problems
    if ctx.json:
        print_json({"ok": ok, "problems": problems, "plants": summary})
    elif ok:
        for plant, s in summary.items():
            print(f"{plant}: {s['mints']} mints, {s['credits']} credits, E = {s['energy_wh']} Wh")
        print(
            "ledger verify: OK (conservation, bounds, fairness, no negative or double mint, replay)"
        )
    else:
        print(f"ledger verify: {len(problems)} problem(s)", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
    if not ok:
        raise Failure("ledger verify failed")
    return 0


def _replay_start(conn: Connection, stored: LedgerState) -> LedgerState | None:
    """Where a replay can start: from scratch, or after pruning, from the ledger state
    stored with the oldest mint whose batch started past every pruned reading (None:
    no such mint, nothing left to replay)."""
    pruned = get_position(conn, RETENTION)
    if pruned == 0:
        return LedgerState()
    m = t.mints.c
    for (text,) in conn.execute(select(m.state_before).order_by(m.id)):
        state = LedgerState.from_json(text)
        if state.position >= pruned:
            return state
    return None


def _replay(conn: Connection, books: list[PlantBook], stored: LedgerState) -> list[str]:
    """Replay readings and decisions up to the stored position and compare (inv. 5)."""
    problems: list[str] = []
    Ledger((b.rules for b in books), stored)  # gives a never-saved state its plant entries
    b, h = t.energy_buckets.c, t.energy_hourly.c
    for plant, energy in stored.plants.items():
        buckets = sum(int(e) for (e,) in conn.execute(select(b.e_mwh).where(b.plant == plant)))
        if buckets != energy.e_mwh:
            problems.append(f"{plant}: energy buckets hold {buckets} mWh, E is {energy.e_mwh}")
        hourly = sum(int(e) for (e,) in conn.execute(select(h.e_mwh).where(h.plant == plant)))
        if hourly != energy.e_mwh:
            problems.append(f"{plant}: hourly energy holds {hourly} mWh, E is {energy.e_mwh}")
    start = _replay_start(conn, stored)
    if start is None:
        return problems
    ledger = Ledger((b.rules for b in books), start)
    first_k = {p: e.mwh_completed for p, e in ledger.state.plants.items()}
    devices = sorted({d for b in books for d in b.rules.energy_devices})
    decisions = [
        d
        for d in repo.decisions_after(conn, start.last_decision_id)
        if d.id <= stored.last_decision_id
    ]
    mints: list[tuple[str, int, int]] = []
    anomalies: set[tuple[str, str, int]] = set()
    readings = repo.stream_energy_readings(conn, devices, stored.position, after=start.position)
    for out in ledger.run(readings, decisions, caught_up=True, scanned=stored.position):
        mints.extend((m.plant, m.mwh_index, m.completed_at_us) for m in out.mints)
        if out.anomaly is not None:
            anomalies.add((str(out.anomaly.kind), out.anomaly.device, out.anomaly.reading_id))
    m = t.mints.c
    have = [
        (p, int(k), int(c))
        for p, k, c in conn.execute(select(m.plant, m.mwh_index, m.completed_at_us))
        if int(k) > first_k.get(p, 0)
    ]
    if sorted(have) != sorted(mints):
        missing = sorted(set(mints) - set(have))[:5]
        extra = sorted(set(have) - set(mints))[:5]
        problems.append(
            f"replay: mints differ from a replay (missing {missing}, unexplained {extra})"
        )
    a = t.anomalies.c
    seen = {(k, d, int(r)) for k, d, r in conn.execute(select(a.kind, a.device, a.reading_id))}
    # A replay from a checkpoint also re-judges the readings pending at its start.
    newer = {x for x in seen if x[2] > start.position}
    if not anomalies <= seen or not newer <= anomalies:
        problems.append(
            f"replay: anomalies differ (missing {sorted(anomalies - seen)[:5]}, "
            f"unexplained {sorted(newer - anomalies)[:5]})"
        )
    ledger.state.position = stored.position
    if ledger.state.to_json() != stored.to_json():
        problems.append(
            "replay: the accountant's stored state differs from a replay of the readings"
        )
    return problems


def _export_rows(conn: Connection, books: dict[str, PlantBook]) -> Iterator[dict[str, Any]]:
    m = t.mints.c
    for plant, k, completed, units, undistributed in conn.execute(
        select(m.plant, m.mwh_index, m.completed_at_us, m.units, m.undistributed_after).order_by(
            m.id
        )
    ):
        book = books.get(plant)
        d = book.decimals if book else 0
        credits = repo_credits(conn, plant, int(k))
        yield {
            "plant": plant,
            "mwh_index": int(k),
            "completed_at": rfc3339(int(completed)),
            "symbol": book.symbol if book else "",
            "units": int(units),
            "amount": amount(int(units), d),
            "undistributed_units": int(undistributed),
            "credits": [{"backer": b, "units": u, "amount": amount(u, d)} for b, u in credits],
        }


def repo_credits(conn: Connection, plant: str, k: int) -> list[tuple[str, int]]:
    """Credits of one mint in id order."""
    c = t.credits.c
    return [
        (b, int(u))
        for b, u in conn.execute(
            select(c.backer, c.units).where(c.plant == plant, c.mwh_index == k).order_by(c.id)
        )
    ]


def export(ctx: Context, fmt: str) -> int:
    """Print every mint and credit as CSV or JSON."""
    books = {b.rules.id: b for b in plant_books(ctx.config)}
    with ctx.store.read() as conn:
        rows = list(_export_rows(conn, books))
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
