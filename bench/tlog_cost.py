"""What the verifiable ledger costs (docs/performance.md, "The verifiable ledger").

  python bench/tlog_cost.py credit [--backers 10000 100000]
  python bench/tlog_cost.py bundle [--mints 10000] [--backers 1000] [--keep DIR] [--repeat N]

`credit`: one MWh minted and credited to N backers, with the log (register and credits
trees, the leaf, the signed checkpoint and their rows) and without it (the same
accountant with no log: the code before the log), each in a fresh subprocess, in the
same run. `bundle`: a plant with M mints credited to B backers (its mints, credits and
log written by the real allocator and the real log code, without readings), then one
backer's bundle built as the API builds it (N times: wall and CPU time of each, then
of its JSON as a file and as the API's body), checked by `python3 verify.py`, and the
log's bytes per mint. `--keep DIR` builds the store in DIR once (its key beside it) and
reuses it on later runs, so that old and new code read the same store.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select

from heliod.adapters.signing import SigningKey, load_signing_key
from heliod.adapters.store import Store, credits_repo
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.jobs.ledger_log import LogSigner, MintLog
from heliod.daemon.read import tlog
from heliod.rewards import exact_json
from heliod.rewards.allocation import Allocator
from heliod.rewards.events import mint_body
from heliod.rewards.register import BEGINNING_US, Register
from heliod.rewards.tlog.note import vkey
from heliod.rewards.verify import MintRecord

sys.path.insert(0, str(Path(__file__).parent))
from ledger import T0_US, _book

ROOT = Path(__file__).resolve().parents[1]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _shares(backers: int, width: int = 6) -> list[dict[str, object]]:
    return [
        {
            "plant": "p",
            "backer": f"b{i:0{width}d}",
            "weight": f"{100 + i % 900}.{i % 100:02d}",
            "valid_from_us": BEGINNING_US,
            "stored_us": 0,
        }
        for i in range(backers)
    ]


def case_credit(backers: int, with_log: bool) -> dict[str, float]:
    """bench/ledger.py's credit case, with or without the log."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/h.db")
        with store.write() as conn:
            conn.execute(insert(t.shares), _shares(backers))
            conn.execute(
                insert(t.readings),
                [
                    {
                        "device": "inv",
                        "ts_us": T0_US + i * 60_000_000,
                        "energy_mwh": e,
                        "received_us": 0,
                    }
                    for i, e in enumerate(
                        (0, 1, 1_000_000_002, 1_000_000_003, 2_000_000_004, 2_000_000_005)
                    )
                ],
            )
        log = LogSigner("heliod", SigningKey.generate()) if with_log else None
        acc = Accountant(store, [_book(["inv"], 100_000)], lambda: T0_US, batch_size=3, log=log)
        acc.batch()  # builds the register and the allocator: not timed, as in bench/ledger.py
        acc.batch_size = 1
        start = time.perf_counter()
        first = acc.batch()  # MWh 1: the first mint under this register
        elapsed = time.perf_counter() - start
        acc.batch()
        start = time.perf_counter()
        second = acc.batch()  # MWh 2: the same weights in force
        again = time.perf_counter() - start
        assert (first.mints, second.mints) == ([("p", 1)], [("p", 2)]), (first, second)
        store.close()
    return {
        "backers": backers,
        "seconds": elapsed,
        "next_seconds": again,
        "peak_rss_mb": _peak_mb(),
    }


def _log_bytes(conn: object) -> int:
    lv, cp, k = t.log_leaves.c, t.log_checkpoints.c, t.log_keys.c
    total = 0
    for stmt in (
        select(
            func.sum(
                func.length(lv.leaf)
                + func.length(lv.leaf_hash)
                + func.length(lv.credits_tiles)
                + func.length(lv.credits_runs)
                + 16  # plant id and index, the first credit id
            )
        ),
        select(func.sum(func.length(cp.note) + func.length(cp.root) + 16)),
        select(func.sum(func.length(k.vkey) + 8)),
    ):
        total += int(conn.execute(stmt).scalar() or 0)  # type: ignore[attr-defined]
    return total


def _build(path: Path, mints: int, backers: int) -> float:
    """Write a plant's M mints to B backers into a fresh SQLite store at `path` (renamed
    there once whole), its signing key beside it; the seconds it took."""
    part = path.with_suffix(".part")
    part.unlink(missing_ok=True)
    store = Store.open(f"sqlite:///{part}")
    with store.write() as conn:
        conn.execute(insert(t.shares), _shares(backers, 4))
    units = 10**8
    key = SigningKey.generate()
    path.with_suffix(".key").write_bytes(key.pem())
    path.with_suffix(".key").chmod(0o600)
    mint_log = MintLog(LogSigner("heliod", key))
    with store.read() as conn:
        register = Register(repo.share_rows(conn, "p"))
    alloc = Allocator(units)
    build_start = time.perf_counter()
    chunk = 200
    for first in range(1, mints + 1, chunk):
        with store.write() as conn:
            mint_log.sync(conn, "p", register, T0_US)
            for k in range(first, min(first + chunk, mints + 1)):
                t_us = T0_US + k * 3_600_000_000
                weights = register.weights_at(t_us, register.last_id)
                rkey = weights.key
                alloc.use(weights)
                credits = alloc.mint()
                record = MintRecord("p", k, t_us, units, register.last_id, alloc.undistributed)
                entry = mint_log.entry(record, rkey, weights, credits)
                body = mint_body(
                    "p", k, completed_at="x", symbol="SLR", decimals=8, units=units,
                    credits=credits, undistributed=alloc.undistributed, log=entry.push_field(),
                )  # fmt: skip
                credits_repo.insert_credits(conn, "p", k, credits)
                repo.insert_mint(conn, record, event=body, state_before="{}", now_us=T0_US)
                mint_log.append(conn, entry, T0_US)
    build = time.perf_counter() - build_start
    store.close()
    part.rename(path)
    return build


def case_bundle(mints: int, backers: int, keep: str | None, repeat: int) -> dict[str, object]:
    """M mints to B backers written directly (or read from the store `keep` holds, built
    there the first time), then one backer's bundle, `repeat` times, and its check."""
    tmp = Path(keep or tempfile.mkdtemp())
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"bundle-{mints}x{backers}.db"
    build = None if keep and path.exists() else _build(path, mints, backers)
    key = load_signing_key(path.with_suffix(".key"), create=False)
    store = Store.open(f"sqlite:///{path}")
    backer = f"b{backers // 2:04d}"
    origin = LogSigner("heliod", key).origin("p")
    cpu: list[float] = []
    wall: list[float] = []
    json_cpu: list[float] = []
    api_cpu: list[float] = []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        with store.read() as conn:
            bundle = tlog.bundle(conn, "p", backer, origin)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        start_cpu = time.process_time()
        text = json.dumps(bundle)
        json_cpu.append(time.process_time() - start_cpu)
        start_cpu = time.process_time()
        exact_json.dumps(bundle).encode()  # the API's body (ExactJSON)
        api_cpu.append(time.process_time() - start_cpu)
    with store.read() as conn:
        log_bytes = _log_bytes(conn)
    out = tmp / "bundle.json"
    out.write_text(text)
    start = time.perf_counter()
    check = subprocess.run(
        [
            "python3",
            str(ROOT / "rewards" / "tlog" / "verify.py"),
            str(out),
            "--key",
            vkey("heliod/p", key.public_key),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    verify_s = time.perf_counter() - start
    assert check.returncode == 0, check.stdout + check.stderr
    bundle_bytes = out.stat().st_size
    store.close()
    size = path.stat().st_size
    if not keep:
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
    return {
        "mints": mints,
        "backers": backers,
        "build_seconds": build,
        "bundle_seconds": sorted(wall),
        "bundle_cpu_seconds": sorted(cpu),
        "json_cpu_seconds": sorted(json_cpu),
        "api_json_cpu_seconds": sorted(api_cpu),
        "bundle_bytes": bundle_bytes,
        "verify_seconds": verify_s,
        "log_bytes_per_mint": log_bytes / mints,
        "db_bytes_per_mint": size / mints,
        "load_average": os.getloadavg(),
    }


def _child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "_child", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        kind = sys.argv[2]
        if kind == "credit":
            print(json.dumps(case_credit(int(sys.argv[3]), sys.argv[4] == "log")))
        else:
            keep = sys.argv[5] or None
            print(
                json.dumps(case_bundle(int(sys.argv[3]), int(sys.argv[4]), keep, int(sys.argv[6])))
            )
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["credit", "bundle"])
    parser.add_argument("--backers", type=int, nargs="*")
    parser.add_argument("--mints", type=int, default=10_000)
    parser.add_argument("--keep", help="bundle: build the store in this folder once, reuse it")
    parser.add_argument("--repeat", type=int, default=1, help="bundle: build it N times")
    a = parser.parse_args()
    if a.what == "credit":
        print(
            "| backers | MWh 1 without the log | with | ratio | MWh 2 without | with | ratio "
            "| peak RSS without → with |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in a.backers or [10_000, 100_000]:
            base = _child("credit", str(n), "-")
            log = _child("credit", str(n), "log")
            print(
                f"| {n:,} | {base['seconds']:.3f} s | {log['seconds']:.3f} s | "
                f"{log['seconds'] / base['seconds']:.2f}× | {base['next_seconds']:.3f} s | "
                f"{log['next_seconds']:.3f} s | {log['next_seconds'] / base['next_seconds']:.2f}× | "
                f"{base['peak_rss_mb']:.0f} → {log['peak_rss_mb']:.0f} MB |",
                flush=True,
            )
    else:
        for n in a.backers or [1000]:
            r = _child("bundle", str(a.mints), str(n), a.keep or "", str(a.repeat))
            print(json.dumps(r, indent=1), flush=True)


if __name__ == "__main__":
    main()
