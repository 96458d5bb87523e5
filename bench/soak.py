"""Soak: the whole daemon with 20 simulated inverters over a compressed 24 hours; memory over time.

    .venv/bin/python bench/soak.py [--devices 20] [--minutes 10] [--poll 0.25] [--parts all]

`--parts all` (the default) configures every part at once: the Modbus inverters, an MQTT
meter on a Mosquitto of the bench's own (free port, temporary config), the InfluxDB export
to a VictoriaMetrics with a temporary data directory, pushes to a local platform that
acknowledges every event, the API and the dashboard. `--parts modbus` runs the inverters,
API and dashboard only; `--parts both` runs the Modbus-only daemon, then the all-parts
one, in the same invocation (the same-run baseline). The bare import of the runtime
(`import heliod.daemon.boot.build` and nothing else) is measured first every time.

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
SECRET = "soak-platform-secret"
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
    every = args.parts == "all"
    if every:
        extra = json.loads(args.extra)
        data["mqtt"] = {"url": f"mqtt://127.0.0.1:{extra['mqtt']}", "client_id": "heliod-soak"}
        data["influxdb"] = {"url": extra["influx"], "org": "soak", "bucket": "soak"}
        data["platform"] = {"push_url": extra["platform"], "timeout": "2s"}
        data["plants"].append(
            {
                "id": "roof",
                "capacity_kw": 1000,
                "timezone": "Europe/Paris",
                "energy_devices": ["meter1"],
                "reward": {"symbol": "ROOF", "tokens_per_mwh": "10", "decimals": 0},
                "devices": [
                    {
                        "id": "meter1",
                        "protocol": "mqtt",
                        "topic": "tele/meter1/SENSOR",
                        "fields": {
                            "energy_wh": {"path": "ENERGY.Total", "unit": "kWh"},
                            "power_w": {"path": "ENERGY.Power", "unit": "W"},
                        },
                        "interval": "1s",
                    }
                ],
            }
        )
    env = {"HELIOD_PLATFORM_SECRET": SECRET, "HELIOD_INFLUXDB_TOKEN": "soak-token"}
    config = validate_config(data, Path(args.state) / "soak.toml", env=env)
    runtime = build_runtime(config, clock, Options(push=every, export=every, mqtt=every))
    # Five backers (not the demo module's: `heliod run` never imports it).
    rows = [RegisterRow(f"backer-{b}", Decimal(1000 * b), BEGINNING_US) for b in range(1, 6)]
    with runtime.store.write() as conn:
        apply_rows(conn, "demo", rows, clock.now_us())
        if every:
            apply_rows(conn, "roof", rows, clock.now_us())
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


def bare_import_kb() -> int:
    """RSS of a fresh interpreter that imports the runtime builder and does nothing else."""
    code = (
        "import heliod.daemon.boot.build, pathlib;"
        "print([l for l in pathlib.Path('/proc/self/status').read_text().splitlines()"
        " if l.startswith('VmRSS:')][0].split()[1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return int(out.stdout.strip())


class Platform:
    """A platform's receiving end that acknowledges every event (200) and counts them."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

        counts = self.counts = {"events": 0}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                counts["events"] += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Until something accepts connections on 127.0.0.1:port."""
    import socket  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def start_services(
    folder: Path, free_port: Any
) -> tuple[list[subprocess.Popen[bytes]], dict[str, Any]]:
    """Mosquitto and VictoriaMetrics on free ports with temporary files."""
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    procs = []
    mqtt_port, vm_port = free_port(), free_port()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    victoria = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
    for binary in (mosquitto, victoria):
        if not Path(binary).exists():
            raise SystemExit(f"{binary} is needed (Debian packages mosquitto, victoria-metrics)")
    conf = folder / "mosquitto.conf"
    user = "" if os.getuid() else "user root\n"
    conf.write_text(
        f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"log_dest file {folder}/mosquitto.log\n{user}"
    )
    procs.append(subprocess.Popen([mosquitto, "-c", str(conf)], stderr=subprocess.DEVNULL))
    procs.append(
        subprocess.Popen(
            [
                victoria,
                f"-httpListenAddr=127.0.0.1:{vm_port}",
                f"-storageDataPath={folder / 'victoria'}",
                "-retentionPeriod=100y",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    wait_port(mqtt_port)
    wait_port(vm_port)
    return procs, {"mqtt": mqtt_port, "influx": f"http://127.0.0.1:{vm_port}"}


def meter(port: int, stop: threading.Event, counts: dict[str, int]) -> None:
    """A Tasmota-like meter publishing its counter every second at QoS 1."""
    import paho.mqtt.client as mqtt  # noqa: PLC0415
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="soak-meter")
    client.connect("127.0.0.1", port)
    client.loop_start()
    total_wh = 5_000_000
    while not stop.wait(1.0):
        total_wh += 50_000
        body = {
            "Time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "ENERGY": {"Total": total_wh / 1000, "Power": 180_000},
        }
        client.publish("tele/meter1/SENSOR", json.dumps(body), qos=1)
        counts["published"] += 1
    client.loop_stop()
    client.disconnect()


def main() -> None:
    """Serve the inverters, run the daemon child, print its memory figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=10.0, help="real minutes for one day")
    parser.add_argument("--poll", type=float, default=0.25, help="poll interval, real seconds")
    parser.add_argument("--parts", choices=("all", "modbus", "both"), default="all")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("ports", "state", "extra"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    for hidden in ("start-sim", "start-real", "speed", "seconds"):
        parser.add_argument(f"--{hidden}", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--api-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
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
    print(f"bare import of heliod.daemon.boot.build: {bare_import_kb() / 1024:.1f} MB RSS")
    parts = ["modbus", "all"] if args.parts == "both" else [args.parts]
    try:
        for part in parts:
            run_child(args, part, servers, start_sim, start_real, speed, free_port)
    finally:
        for server in servers:
            server.stop()


def run_child(
    args: argparse.Namespace,
    parts: str,
    servers: list[Any],
    start_sim: float,
    start_real: float,
    speed: float,
    free_port: Any,
) -> None:
    """One daemon child with `parts` configured; print its figures."""
    import tempfile  # noqa: PLC0415

    seconds = args.minutes * 60
    api_port = free_port()
    counts = {"ok": 0, "failed": 0, "published": 0}
    stop = threading.Event()
    threading.Thread(
        target=reader, args=(f"http://127.0.0.1:{api_port}/", stop, counts), daemon=True
    ).start()
    procs: list[subprocess.Popen[bytes]] = []
    platform = None
    with tempfile.TemporaryDirectory(prefix="heliod-soak-") as state:
        extra: dict[str, Any] = {}
        if parts == "all":
            procs, extra = start_services(Path(state), free_port)
            platform = Platform()
            extra["platform"] = platform.url
            threading.Thread(target=meter, args=(extra["mqtt"], stop, counts), daemon=True).start()
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    f"--parts={parts}",
                    f"--extra={json.dumps(extra)}",
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
        finally:
            stop.set()
            if platform is not None:
                platform.close()
            for service in procs:
                service.terminate()
                service.wait(15)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        sys.exit(1)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    samples = result["samples"]
    half = [s for s in samples if s[0] >= seconds / 2]
    slope = (half[-1][1] - half[0][1]) / max(1.0, half[-1][0] - half[0][0]) * 3600 / 1024
    print(f"== parts: {parts}")
    print(
        f"devices: {args.devices}, poll every {args.poll} s real ({args.poll * speed:.0f} s simulated)"
    )
    print(f"one simulated day in {args.minutes:g} min (speed {speed:.0f}x)")
    print(f"readings stored: {result['readings']:,}; MWh minted: {result['mints']}")
    print(f"dashboard/metrics requests: {counts['ok']} ok, {counts['failed']} failed")
    if platform is not None:
        print(f"meter messages: {counts['published']}; events pushed: {platform.counts['events']}")
    print(f"RSS at 5 s: {samples[1][1] / 1024:.1f} MB; at the end: {samples[-1][1] / 1024:.1f} MB")
    print(f"peak RSS (VmHWM): {result['peak_kb'] / 1024:.1f} MB")
    print(f"RSS slope over the second half: {slope:+.2f} MB per real hour")
    print("samples (s, MB):", " ".join(f"{t:.0f}:{kb / 1024:.1f}" for t, kb in samples), flush=True)


if __name__ == "__main__":
    main()
