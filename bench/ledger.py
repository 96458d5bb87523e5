"""Benchmarks of the accounting core (issue: foundation). Prints figures for docs/performance.md.

  python bench/ledger.py credit  [--backers 0 10000 100000 1000000] [--log]
  python bench/ledger.py account [--months 1 3 12] [--devices 10] [--goals]

Each case runs in a fresh subprocess so its peak RSS is its own. `credit` times one MWh
minted and credited (allocation + commit of the mint, its credits and balances) with N
backers in the register (the store is filled by a setup process first; 0 backers is the
baseline: the same process with no register); with `--log`, the accountant also keeps
the verifiable log, as the daemon does (register and credits trees, the leaf, the signed
checkpoint). `account` times `Accountant.run()` over one-minute readings of
D devices, after loading them (loading is not timed); with `--goals`, each case also
runs with the default milestones and a challenge (their events committed with the
mints), against the same case without them in the same command.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal

from sqlalchemy import insert

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.daemon.jobs.accountant import Accountant, PlantBook
from heliod.rewards.energy import Bound
from heliod.rewards.goals import Challenge, PlantGoals
from heliod.rewards.ledger import PlantRules
from heliod.rewards.register import BEGINNING_US

T0_US = 1_483_228_800_000_000  # 2017-01-01T00:00:00Z
MINUTE_US = 60_000_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _book(devices: list[str], capacity_kw: int) -> PlantBook:
    rules = PlantRules(
        "p", Bound.of(Decimal(capacity_kw), Decimal("1.2")), frozenset(devices), None
    )
    return PlantBook(rules, 10**8, "SLR", 8)


def setup_credit(path: str, backers: int) -> None:
    """A store with `backers` register rows and the readings of one MWh (a setup process,
    so the measuring one's peak RSS is the daemon's own)."""
    store = Store.open(f"sqlite:///{path}")
    with store.write() as conn:
        if backers:  # 0: the baseline, no register
            conn.exec_driver_sql(
                "INSERT INTO shares (plant, backer, weight, valid_from_us, stored_us) "
                "VALUES ('p', ?, ?, ?, 0)",
                [
                    (f"b{i:07d}", f"{100 + i % 900}.{i % 100:02d}", BEGINNING_US)
                    for i in range(backers)
                ],
            )
        conn.execute(
            insert(t.readings),
            [
                {
                    "device": "inv",
                    "ts_us": T0_US + i * MINUTE_US,
                    "energy_mwh": e,
                    "received_us": 0,
                }
                for i, e in enumerate((0, 1, 1_000_000_002, 2_000_000_003, 2_000_000_004))
            ],
        )
    store.close()


def case_credit(path: str, backers: int, with_log: bool = False) -> dict[str, float]:
    """One MWh credited to the `backers` of the store at `path` (see `setup_credit`)."""
    store = Store.open(f"sqlite:///{path}")
    rss_open = _peak_mb()
    log = None
    if with_log:  # imported only then: the cases without the log keep their baseline RSS
        from heliod.adapters.signing import SigningKey  # noqa: PLC0415 - see above
        from heliod.daemon.jobs.ledger_log import LogSigner  # noqa: PLC0415

        log = LogSigner("bench.example/heliod", SigningKey.generate())
    acc = Accountant(store, [_book(["inv"], 100_000)], lambda: T0_US, batch_size=1, log=log)
    # The first batch loads the register and builds the allocator: what a daemon does
    # once at start; then the mint itself is timed.
    start = time.perf_counter()
    acc.batch()
    load = time.perf_counter() - start
    rss_load = _peak_mb()
    times = []
    while len(times) < 2:  # mint 1 (every backer new), mint 2 (the steady state)
        start = time.perf_counter()
        result = acc.batch()
        if result.mints:
            times.append(time.perf_counter() - start)
        assert not result.caught_up or result.mints or len(times) == 2, result
    store.close()
    return {
        "backers": backers,
        "seconds": times[0],
        "seconds_2": times[1],
        "load_seconds": load,
        "peak_rss_mb_open": rss_open,
        "peak_rss_mb_load": rss_load,
        "peak_rss_mb": _peak_mb(),
    }


def case_account(
    months: int, devices: int, backers: int = 1000, goals: bool = False
) -> dict[str, float]:
    """`months` of one-minute readings from `devices` inverters of 250 kW, accounted."""
    names = [f"inv{d:02d}" for d in range(devices)]
    minutes = months * 30 * 24 * 60
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/h.db")
        with store.write() as conn:
            conn.execute(
                insert(t.shares),
                [
                    {
                        "plant": "p",
                        "backer": f"b{i:04d}",
                        "weight": str(1 + i % 10),
                        "valid_from_us": BEGINNING_US,
                        "stored_us": 0,
                    }
                    for i in range(backers)
                ],
            )
        energy = [0] * devices
        chunk: list[dict[str, int]] = []
        load_start = time.perf_counter()
        for m in range(minutes):
            hour = (m % 1440) / 60
            power_w = (
                max(0.0, 240_000 * math.sin(math.pi * (hour - 6) / 12)) if 6 < hour < 18 else 0.0
            )
            step_mwh = int(power_w / 60 * 1000)
            for d in range(devices):
                energy[d] += step_mwh
                chunk.append(
                    {
                        "device": names[d],
                        "ts_us": T0_US + m * MINUTE_US,
                        "energy_mwh": energy[d],
                        "received_us": 0,
                    }
                )
            if len(chunk) >= 50_000:
                with store.write() as conn:
                    conn.execute(insert(t.readings), chunk)
                chunk = []
        if chunk:
            with store.write() as conn:
                conn.execute(insert(t.readings), chunk)
        load = time.perf_counter() - load_start
        rss_before = _peak_mb()
        trees = Challenge("trees", "100 MWh: 100 trees", 100, T0_US + 10**14, "town")
        plant_goals = [PlantGoals("p", None, (trees,))] if goals else []
        acc = Accountant(
            store,
            [_book(names, 250 * devices)],
            lambda: T0_US,
            batch_size=5000,
            goals=plant_goals,
        )
        start = time.perf_counter()
        result = acc.run()
        elapsed = time.perf_counter() - start
        store.close()
    readings = minutes * devices
    return {
        "months": months,
        "backers": backers,
        "readings": readings,
        "mints": len(result.mints),
        "seconds": elapsed,
        "readings_per_s": readings / elapsed,
        "load_seconds": load,
        "peak_rss_mb_before": rss_before,
        "peak_rss_mb": _peak_mb(),
    }


def _child(
    kind: str, arg: int, devices: int, backers: int = 0, option: bool = False
) -> dict[str, float]:
    cmd = [sys.executable, __file__, "_child", kind, str(arg), str(devices), str(backers)]
    cmd.append("on" if option else "-")  # account: --goals; credit: --log
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        kind, arg, devices, backers = (
            sys.argv[2],
            int(sys.argv[3]),
            int(sys.argv[4]),
            int(sys.argv[5]),
        )
        option = sys.argv[6] == "on"
        if kind == "credit":
            with tempfile.TemporaryDirectory() as tmp:
                path = f"{tmp}/h.db"
                subprocess.run([sys.executable, __file__, "_setup", str(arg), path], check=True)
                print(json.dumps(case_credit(path, arg, option)))
            return
        print(json.dumps(case_account(arg, devices, backers, option)))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_setup":
        setup_credit(sys.argv[3], int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["credit", "account", "all"])
    parser.add_argument("--backers", type=int, nargs="*", default=[0, 10_000, 100_000, 1_000_000])
    parser.add_argument("--months", type=int, nargs="*", default=[1, 3, 12])
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument(
        "--goals", action="store_true", help="also with milestones and a challenge, to compare"
    )
    parser.add_argument("--log", action="store_true", help="credit: with the verifiable log")
    parser.add_argument(
        "--register",
        type=int,
        nargs="*",
        default=[100, 1000],
        help="backers in the register for the accounting runs",
    )
    a = parser.parse_args()
    if a.what in ("credit", "all"):
        print(
            "| backers | time to mint and credit MWh 1 | MWh 2 | register load | "
            "peak RSS: store open → register loaded → after the mint |"
        )
        print("|---:|---:|---:|---:|---:|")
        for n in a.backers:
            r = _child("credit", n, 0, option=a.log)
            print(
                f"| {n:,} | {r['seconds']:.3f} s | {r['seconds_2']:.3f} s | "
                f"{r['load_seconds']:.2f} s | "
                f"{r['peak_rss_mb_open']:.0f} → {r['peak_rss_mb_load']:.0f} → "
                f"{r['peak_rss_mb']:.0f} MB |",
                flush=True,
            )
    if a.what in ("account", "all"):
        print(
            "| readings (months × devices × 1/min) | backers | goals | MWh minted | accounting time | readings/s | peak RSS before → after |"
        )
        print("|---:|---:|---|---:|---:|---:|---:|")
        variants = [False, True] if a.goals else [False]
        for m, n, g in [(m, n, g) for n in a.register for m in a.months for g in variants]:
            r = _child("account", m, a.devices, n, g)
            print(
                f"| {r['readings']:,} ({m} × {a.devices}) | {n:,} | {'yes' if g else 'no'} | {r['mints']:,} | {r['seconds']:.1f} s | "
                f"{r['readings_per_s']:,.0f} | {r['peak_rss_mb_before']:.0f} → {r['peak_rss_mb']:.0f} MB |",
                flush=True,
            )


if __name__ == "__main__":
    main()
