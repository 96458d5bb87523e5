"""Soak: the whole daemon with 20 simulated inverters over a compressed 24 hours; memory over time.

    .venv/bin/python bench/soak.py [--devices 20] [--minutes 10] [--poll 0.25]

This process serves the inverters (heliod's demo simulator, one pymodbus server each, a
sunrise-to-sunset curve with clouds) and plays a dashboard reader (healthz, data.json,
metrics every 2 s). A child process runs the daemon runtime, exactly as `heliod run`
builds it (store, poller, accountant, API, dashboard, supervisor), on an accelerated
clock shared with the inverters: `--minutes` of real time are one simulated day. The
child samples its own RSS every 5 s. Printed: readings stored, MWh minted, RSS at start,
at the end, peak (VmHWM), and the slope over the second half of the run (flat memory has
a slope near 0). Figures are recorded in docs/performance.md ("Daemon memory").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Europe/Paris")
DAY_S = 86_400


def sim_clock(start_sim: float, start_real: float, speed: float) -> Any:
    """Simulated UTC now, from a start shared by both processes (wall clock based)."""

    def now() -> datetime:
        return datetime.fromtimestamp(start_sim + (time.time() - start_real) * speed, UTC)

    return now


def rss_kb(field: str) -> int:
    """VmRSS or VmHWM of this process, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(args: argparse.Namespace) -> None:
    """The daemon under test: the runtime on the shared accelerated clock, sampling its RSS."""
    sys.path.insert(0, str(ROOT))
    from heliod.adapters.clock import Clock  # noqa: PLC0415
    from heliod.adapters.store.shares import apply_rows  # noqa: PLC0415
    from heliod.daemon.boot.build import build_runtime  # noqa: PLC0415
    from heliod.daemon.boot.logs import setup_logging  # noqa: PLC0415
    from heliod.daemon.boot.runtime import Options  # noqa: PLC0415
    from heliod.daemon.config import validate_config  # noqa: PLC0415 - child only
    from heliod.rewards.register import BEGINNING_US  # noqa: PLC0415
    from heliod.rewards.register_rows import RegisterRow  # noqa: PLC0415
    from heliod.rewards.times import to_us  # noqa: PLC0415

    setup_logging("warning")
    now = sim_clock(args.start_sim, args.start_real, args.speed)
    clock = Clock(lambda: to_us(now()), rate=args.speed)
    ports = json.loads(args.ports)
    devices = [
        {
            "id": f"inv{i + 1:02d}",
            "protocol": "modbus",
            "host": "127.0.0.1",
            "port": port,
            "poll_interval": f"{int(args.poll * 1000)}ms",
            "timeout": "2s",
        }
        for i, port in enumerate(ports)
    ]
    data = {
        "daemon": {"state_dir": args.state},
        "api": {"listen": f"127.0.0.1:{args.api_port}", "dashboard_public": True},
        "plants": [
            {
                "id": "demo",
                "capacity_kw": 250 * len(ports),
                "timezone": "Europe/Paris",
                "energy_devices": [d["id"] for d in devices],
                "reward": {"symbol": "SUN", "tokens_per_mwh": "100", "decimals": 2},
                "devices": devices,
            }
        ],
    }
    config = validate_config(data, Path(args.state) / "soak.toml", env={})
    runtime = build_runtime(config, clock, Options(push=False, export=False, mqtt=False))
    # Five backers (not the demo module's: `heliod run` never imports it).
    rows = [RegisterRow(f"backer-{b}", Decimal(1000 * b), BEGINNING_US) for b in range(1, 6)]
    with runtime.store.write() as conn:
        apply_rows(conn, "demo", rows, clock.now_us())
    runtime.start()
    samples = []
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        samples.append((round(time.monotonic() - started, 1), rss_kb("VmRSS")))
        time.sleep(5)
    runtime.stop()
    peak_kb = rss_kb("VmHWM")  # the daemon's own peak, before the counting below
    from sqlalchemy import func, select  # noqa: PLC0415

    from heliod.adapters.store import Store  # noqa: PLC0415
    from heliod.adapters.store import schema as t  # noqa: PLC0415

    store = Store.open(config.storage.url, migrate=False)
    with store.read() as conn:
        readings = conn.execute(select(func.count()).select_from(t.readings)).scalar()
        mints = conn.execute(select(func.count()).select_from(t.mints)).scalar()
    store.close()
    print(
        json.dumps({"samples": samples, "peak_kb": peak_kb, "readings": readings, "mints": mints}),
        flush=True,
    )


def reader(api: str, stop: threading.Event, counts: dict[str, int]) -> None:
    """Plays an open dashboard and a Prometheus scraper."""
    while not stop.wait(2.0):
        for path in ("healthz", "dashboard/data.json", "metrics"):
            try:
                with urllib.request.urlopen(api + path, timeout=5) as answer:
                    answer.read()
                counts["ok"] += 1
            except OSError:
                counts["failed"] += 1


def main() -> None:
    """Serve the inverters, run the daemon child, print its memory figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=10.0, help="real minutes for one day")
    parser.add_argument("--poll", type=float, default=0.25, help="poll interval, real seconds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("ports", "state"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    for hidden in ("start-sim", "start-real", "speed", "seconds"):
        parser.add_argument(f"--{hidden}", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--api-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    import tempfile  # noqa: PLC0415

    sys.path.insert(0, str(ROOT))
    from heliod.daemon.cli.simulator import (  # noqa: PLC0415
        InverterServer,
        SimulatedInverter,
        SunCurve,
        free_port,
    )
    from heliod.daemon.cli.sun import Site  # noqa: PLC0415

    paris = Site(48.8566, 2.3522)

    seconds = args.minutes * 60
    speed = DAY_S / seconds
    midnight = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    start_sim = (midnight + timedelta(hours=4)).timestamp()  # from 04:00 to 04:00
    start_real = time.time()
    now = sim_clock(start_sim, start_real, speed)
    servers = [
        InverterServer(SimulatedInverter(SunCurve(240_000.0, paris, seed=i), now)).start()
        for i in range(args.devices)
    ]
    api_port = free_port()
    counts = {"ok": 0, "failed": 0}
    stop = threading.Event()
    threading.Thread(
        target=reader, args=(f"http://127.0.0.1:{api_port}/", stop, counts), daemon=True
    ).start()
    with tempfile.TemporaryDirectory(prefix="heliod-soak-") as state:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                f"--ports={json.dumps([s.port for s in servers])}",
                f"--state={state}",
                f"--start-sim={start_sim}",
                f"--start-real={start_real}",
                f"--speed={speed}",
                f"--seconds={seconds}",
                f"--api-port={api_port}",
                f"--poll={args.poll}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    stop.set()
    for server in servers:
        server.stop()
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        sys.exit(1)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    samples = result["samples"]
    half = [s for s in samples if s[0] >= seconds / 2]
    slope = (half[-1][1] - half[0][1]) / max(1.0, half[-1][0] - half[0][0]) * 3600 / 1024
    print(
        f"devices: {args.devices}, poll every {args.poll} s real ({args.poll * speed:.0f} s simulated)"
    )
    print(f"one simulated day in {args.minutes:g} min (speed {speed:.0f}x)")
    print(f"readings stored: {result['readings']:,}; MWh minted: {result['mints']}")
    print(f"dashboard/metrics requests: {counts['ok']} ok, {counts['failed']} failed")
    print(f"RSS at 5 s: {samples[1][1] / 1024:.1f} MB; at the end: {samples[-1][1] / 1024:.1f} MB")
    print(f"peak RSS (VmHWM): {result['peak_kb'] / 1024:.1f} MB")
    print(f"RSS slope over the second half: {slope:+.2f} MB per real hour")
    print("samples (s, MB):", " ".join(f"{t:.0f}:{kb / 1024:.1f}" for t, kb in samples))


if __name__ == "__main__":
    main()
