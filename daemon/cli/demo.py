"""`heliod demo`: a whole simulated plant on this machine, with the dashboard.

A simulated SunSpec inverter (daemon/cli/simulator.py) on a free loopback port, the daemon on
a fresh embedded store in a temporary state directory, five demo backers, the dashboard
and API on a free loopback port. The plant stands in Paris and its power follows today's
sun there (daemon/cli/sun.py); the simulated day starts at dawn. Time runs `speed` times
faster than real time (600 by default: one real second is ten simulated minutes). The
plant is 1 MW so that even on a short December day (about 2.6 kWh per kW) its first MWh
comes within a real minute; a 250 kW plant would need three. It never reads the
configuration file, never pushes, never exports.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from heliod.adapters.clock import Clock
from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.build import build_runtime
from heliod.daemon.boot.logs import setup_logging
from heliod.daemon.boot.runtime import Options, Runtime, run_until_signal
from heliod.daemon.cli.simulator import InverterServer, SimulatedInverter, SunCurve
from heliod.daemon.cli.sun import Site, sunrise
from heliod.daemon.config import Config, validate_config
from heliod.daemon.read.plants import Minted, energy_of, minted
from heliod.rewards.register import BEGINNING_US
from heliod.rewards.register_rows import RegisterRow
from heliod.rewards.times import rfc3339, to_us
from heliod.rewards.units import mwh_to_wh

log = logging.getLogger("heliod.demo")

DEFAULT_SPEED = 600.0  # simulated seconds per real second: 1 s = 10 minutes
PLANT = "demo"
TIMEZONE = "Europe/Paris"
CAPACITY_KW = Decimal(1000)
PEAK_W = 980_000.0  # a little under the nameplate, as an inverter clips
SITE = Site(48.8566, 2.3522)  # Paris, in the plant's timezone
DAWN_FALLBACK_HOUR = 6  # local start when the sun does not rise (never in Paris)
MILESTONES_MWH = (1, 5, 10, 25, 50, 100)
CHALLENGE_DAYS = 3
BACKERS = (
    ("alice", "5000"),
    ("bob", "2500"),
    ("chloe", "1500"),
    ("dimitri", "700"),
    ("eva", "300"),
)
STATUS_EVERY_S = 5.0


def accelerated_clock(speed: float, start: datetime) -> Clock:
    """A clock that starts at `start` and runs `speed` times faster than real time."""
    t0 = time.monotonic_ns()
    start_us = to_us(start)

    def now_us() -> int:
        return start_us + int((time.monotonic_ns() - t0) // 1000 * speed)

    return Clock(now_us, rate=speed)


def dawn(day: date, tz: ZoneInfo) -> datetime:
    """When the demo's day starts: sunrise at the plant's site (UTC)."""
    rise = sunrise(SITE, day, tz)
    if rise is None:
        rise = datetime(day.year, day.month, day.day, DAWN_FALLBACK_HOUR, tzinfo=tz)
    return rise.astimezone(UTC)


def demo_config(
    state_dir: Path, modbus_port: int, token_sha256: str, start: datetime | None = None
) -> Config:
    """The demo plant's configuration, validated like a file's (never read from disk)."""
    start = start or datetime.now(UTC)
    deadline = (start + timedelta(days=CHALLENGE_DAYS)).replace(microsecond=0)
    data: dict[str, Any] = {
        "daemon": {"state_dir": str(state_dir), "log_level": "info"},
        "api": {
            "listen": "127.0.0.1:8080",  # replaced by a free port at start
            "tokens": [{"name": "demo", "sha256": token_sha256}],
            "dashboard_public": True,  # loopback only, demo data only
        },
        "plants": [
            {
                "id": PLANT,
                "name": "Demo plant (simulated, 1 MW)",
                "capacity_kw": CAPACITY_KW,
                "timezone": TIMEZONE,
                "energy_devices": ["inv1"],
                "reward": {"symbol": "SUN", "tokens_per_mwh": Decimal(100), "decimals": 2},
                # An illustration, said so wherever the figure shows (docs/milestones.md).
                "impact": {
                    "co2_g_per_kwh": Decimal(50),
                    "source": "illustration for the demo, not a published emission factor",
                    "household_kwh_per_year": Decimal(4700),
                },
                "milestones": [{"mwh": m} for m in MILESTONES_MWH],
                "challenges": [
                    {
                        "id": "trees",
                        "title": f"10 MWh in {CHALLENGE_DAYS} days: the demo town plants 10 trees",
                        "goal_mwh": 10,
                        "deadline": deadline.isoformat(),
                        "sponsor": "Demo town",
                    }
                ],
                "devices": [
                    {
                        "id": "inv1",
                        "protocol": "modbus",
                        "transport": "tcp",
                        "host": "127.0.0.1",
                        "port": modbus_port,
                        "unit_id": 1,
                        "profile": "sunspec",
                        # Real seconds: at speed 600 a poll every 10 simulated minutes.
                        "poll_interval": "1s",
                        "timeout": "2s",
                    }
                ],
            }
        ],
    }
    return validate_config(data, state_dir / "demo.toml", env={})


def add_backers(runtime: Runtime) -> None:
    """The demo's share register: five backers with what they financed, in euros."""
    rows = [RegisterRow(b, Decimal(amount), BEGINNING_US) for b, amount in BACKERS]
    with runtime.store.write() as conn:
        apply_rows(conn, PLANT, rows, runtime.clock.now_us())


def summary(store: Store, now_us: int) -> dict[str, Any]:
    """What the demo made so far: energy, MWh minted, units, balances."""
    with store.read() as conn:
        e_mwh, _ = energy_of(repo.load_state(conn), PLANT)
        done = minted(conn).get(PLANT, Minted())
        balances = repo.balances_of(conn, PLANT)
    return {
        "simulated_time": rfc3339(now_us),
        "energy_wh": str(mwh_to_wh(e_mwh)),
        "mwh_minted": done.mints,
        "units_minted": done.units,
        "balances": {b: int(u) for b, u in sorted(balances.items())},
    }


def _report(runtime: Runtime, stop: threading.Event, as_json: bool) -> None:
    tz = ZoneInfo(TIMEZONE)
    while not stop.wait(STATUS_EVERY_S):
        try:
            s = summary(runtime.store, runtime.clock.now_us())
        except Exception as exc:  # the store is closing: the last line comes from run_demo
            log.debug("demo status: %s", exc)
            return
        if as_json:
            print(json.dumps({"event": "status", **s}), flush=True)
        else:
            local = datetime.fromisoformat(s["simulated_time"].replace("Z", "+00:00"))
            kwh = Decimal(s["energy_wh"]) / 1000
            print(
                f"  {local.astimezone(tz):%H:%M} simulated: {kwh:.1f} kWh accounted, "
                f"{s['mwh_minted']} MWh minted",
                flush=True,
            )


def run_demo(
    speed: float | None = None, port: int = 0, duration: float | None = None, as_json: bool = False
) -> int:
    """Run the demo until Ctrl-C (or `duration` seconds); 0 after a clean stop."""
    speed = speed or DEFAULT_SPEED
    if speed <= 0 or not 0 <= port <= 65535:
        print("heliod: --speed must be positive and --port 0..65535", file=sys.stderr)
        return 2
    setup_logging("info")
    tz = ZoneInfo(TIMEZONE)
    start = dawn(datetime.now(tz).date(), tz)
    clock = accelerated_clock(speed, start)
    state_dir = Path(tempfile.mkdtemp(prefix="heliod-demo-"))
    inverter = SimulatedInverter(SunCurve(PEAK_W, SITE), clock.now)
    server = InverterServer(inverter)
    token = secrets.token_urlsafe(24)
    try:
        server.start()
        token_hash = hashlib.sha256(token.encode()).hexdigest()
        config = demo_config(state_dir, server.port, token_hash, start)
        options = Options(listen=("127.0.0.1", port), push=False, export=False, mqtt=False)
        runtime = build_runtime(config, clock, options)
        add_backers(runtime)
        stop = threading.Event()
        if duration is not None:
            timer = threading.Timer(duration, stop.set)
            timer.daemon = True
            timer.start()
        reporter = threading.Thread(target=_report, args=(runtime, stop, as_json), daemon=True)

        def started() -> None:
            _announce(runtime, token, speed, state_dir, as_json)
            reporter.start()

        code = run_until_signal(runtime, stop, status="demo", on_started=started)
        store = Store.open(config.storage.url, migrate=False)  # the runtime's is closed now
        try:
            final = summary(store, clock.now_us())
        finally:
            store.close()
        if as_json:
            print(json.dumps({"event": "stopped", **final}), flush=True)
        else:
            print(
                f"stopped: {final['mwh_minted']} MWh minted, "
                f"{Decimal(final['energy_wh']) / 1000:.1f} kWh accounted",
                flush=True,
            )
        return code
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def _announce(runtime: Runtime, token: str, speed: float, state_dir: Path, as_json: bool) -> None:
    url = runtime.url
    if as_json:
        print(
            json.dumps(
                {
                    "event": "started",
                    "url": url,
                    "api_token": token,
                    "speed": speed,
                    "state_dir": str(state_dir),
                }
            ),
            flush=True,
        )
        return
    minutes = speed / 60
    print(
        f"heliod demo: a simulated 1 MW plant in Paris from dawn, 1 real second = {minutes:g} "
        "simulated minutes\n"
        f"  dashboard: {url}\n"
        f"  API token: {token}   (curl -H 'Authorization: Bearer {token}' {url}api/v1/plants)\n"
        f"  Ctrl-C stops it; nothing is kept ({state_dir} is removed).",
        flush=True,
    )
