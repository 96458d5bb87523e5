"""A thousand kills: `heliod run` SIGKILLed at random moments; nothing may be lost or doubled.

    .venv/bin/python bench/kill_loop.py [--kills 1000] [--seed 1] [--max-delay 2.0]
                                        [--during-start 0.3]
                                        [--json] [--keep DIR]

Everything is real and on loopback: a SunSpec inverter served over Modbus TCP (heliod's
demo simulator, 1 GW steady, so an MWh completes every 3.6 s), a Tasmota-like meter
publishing its counter at QoS 1 every 0.2 s to a Mosquitto started here (persistent
session, so the broker keeps the messages while heliod is dead), and a platform that
checks each push's signature and records it. `heliod run` (a subprocess, the installed
command line) is started, killed with SIGKILL after a random delay (from the first
instructions of the interpreter to well after it is serving: start-up, store open,
polling, MQTT backlog, accounting, pushing), started again, N times. Then the sources
fall silent, a last run catches up and stops with SIGTERM, and the bench checks:

- energy: each plant's accounted energy is exactly its counter's rise, from the first
  stored reading to the last confirmed one (to the milliwatt-hour);
- mints: MWh 1..K of each plant each exactly once, K = floor(E / 1 MWh);
- `heliod ledger verify` passes;
- MQTT: every message the broker acknowledged to the meter is stored exactly once, and
  nothing else is (heliod acknowledges a message only after storing it, so a message
  heliod acknowledged and lost would be missing);
- push: every mint reached the platform, always with the bytes committed in the store.

Exit 0 when all hold, 1 otherwise. Figures (kills, how many landed before or after
READY, readings, MWh, messages, doubles, losses) are printed, and recorded in
docs/performance.md ("A thousand kills").
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from heliod.daemon.cli.simulator import InverterServer, SimulatedInverter, SteadyPower
from heliod.rewards.ledger import LedgerState

HELIOD = [sys.executable, "-m", "heliod.daemon.cli.main"]
SECRET = "kill-loop-platform-secret"
POWER_W = 1_000_000_000.0  # one MWh every 3.6 s
CAPACITY_KW = 1_000_000
METER_STEP_WH = 50_000  # per 0.2 s: 900 MW, under the roof plant's 1 GW capacity
METER_PERIOD_S = 0.2
MWH = 10**9  # milliwatt-hours in a MWh
READY_LINE = "heliod running:"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Broker:
    """Mosquitto on a free loopback port, persistence on, queues large enough for the run."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise SystemExit("mosquitto is needed (Debian: apt-get install mosquitto)")
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = folder / "mosquitto.conf"
        user = "" if os.getuid() else "user root\n"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nmax_queued_messages 1000000\n"
            f"log_dest file {folder}/mosquitto.log\n{user}"
        )
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


class Meter:
    """Publishes its counter at QoS 1; `acked` holds the values the broker acknowledged."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="kill-loop-meter",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.total_wh = 5_000_000
        self.acked: list[int] = []
        self._pending: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with self._lock:
            value = self._pending.pop(mid, None)
            if value is not None:
                self.acked.append(value)

    def _run(self) -> None:
        while not self._stop.wait(METER_PERIOD_S):
            self.total_wh += METER_STEP_WH
            ts = datetime.now(UTC).isoformat(timespec="milliseconds")
            kwh = Decimal(self.total_wh) / 1000
            text = f'{{"Time":"{ts}","ENERGY":{{"Total":{kwh},"Power":900000000}}}}'
            with self._lock:
                info = self.client.publish("tele/meter1/SENSOR", text.encode(), qos=1)
                self._pending[info.mid] = self.total_wh

    def stop(self) -> None:
        """Stop publishing and wait until the broker acknowledged every message sent."""
        self._stop.set()
        self._thread.join(5)
        deadline = time.monotonic() + 30
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.05)
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Platform:
    """Checks each push's HMAC signature and records (Idempotency-Key, body)."""

    port: int = field(default_factory=free_port)
    events: list[tuple[str, bytes]] = field(default_factory=list)
    bad_signatures: int = 0
    cut_short: int = 0  # requests whose body ended early: the sender was killed mid-request

    def __post_init__(self) -> None:
        platform = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    with lock:
                        platform.cut_short += 1
                    return
                try:
                    parts = dict(
                        p.split("=", 1) for p in self.headers.get("Heliod-Signature", "").split(",")
                    )
                    mac = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, "sha256")
                    ok = hmac.compare_digest(mac.hexdigest(), parts["v1"])
                except (KeyError, ValueError):
                    ok = False
                with lock:
                    if ok:
                        platform.events.append((self.headers.get("Idempotency-Key", ""), body))
                    else:
                        platform.bad_signatures += 1
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_site(folder: Path, *, api_port: int, modbus_port: int, mqtt_port: int, push: int) -> Path:
    """heliod.toml for two plants (SunSpec inverter, MQTT meter), push on, its secret file."""
    (folder / "platform.secret").write_text(SECRET + "\n")
    config = folder / "heliod.toml"
    config.write_text(
        f"""[daemon]
state_dir = "state"
log_level = "info"

[api]
listen = "127.0.0.1:{api_port}"

[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
client_id = "heliod-kill-loop"

[platform]
push_url = "http://127.0.0.1:{push}/events"
secret_file = "platform.secret"
timeout = "2s"
retry_max_interval = "2s"

[[plants]]
id = "brassemonte"
capacity_kw = {CAPACITY_KW}
timezone = "Europe/Paris"
energy_devices = ["inv1"]

[plants.reward]
symbol = "SLR"
tokens_per_mwh = "1"
decimals = 8

[[plants.devices]]
id = "inv1"
protocol = "modbus"
host = "127.0.0.1"
port = {modbus_port}
poll_interval = "300ms"
timeout = "1s"

[[plants]]
id = "roof"
capacity_kw = {CAPACITY_KW}
timezone = "Europe/Paris"
energy_devices = ["meter1"]

[plants.reward]
symbol = "ROOF"
tokens_per_mwh = "10"
decimals = 0

[[plants.devices]]
id = "meter1"
protocol = "mqtt"
topic = "tele/meter1/SENSOR"
fields.energy_wh = {{ path = "ENERGY.Total", unit = "kWh" }}
fields.power_w = {{ path = "ENERGY.Power", unit = "W" }}
timestamp = {{ path = "Time" }}
interval = "1s"
"""
    )
    return config


def heliod(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HELIOD, "-c", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def import_backers(config: Path) -> None:
    for plant, rows in (
        ("brassemonte", "backer,amount\nalice,3\nbob,2\nchloe,1.5\n"),
        ("roof", "backer,amount\ndan,1\nemma,2\n"),
    ):
        csv = config.parent / f"{plant}.csv"
        csv.write_text(rows)
        done = heliod(config, "backers", "import", "--plant", plant, str(csv))
        if done.returncode != 0:
            raise SystemExit(f"backers import failed: {done.stdout}{done.stderr}")


class Zygote:
    """A process that has imported heliod and forks one `heliod -c CONFIG run` per start.

    Each child is the command line's own `main(["-c", CONFIG, "run"])` in a process
    forked from an interpreter that imported heliod and nothing else (no thread, no file,
    no socket open), so it starts as `heliod run` does, minus the seconds of importing
    Python modules, a phase in which heliod has opened nothing a kill could hurt. On this
    2-core machine that halves the time per kill. `--exec` starts the command line afresh
    each time instead.
    """

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(10)


def zygote_main() -> int:
    """Serve the bench's requests on stdin: `spawn CONFIG LOG`, `poll PID`, `wait PID`."""
    import importlib  # noqa: PLC0415 - only the zygote imports heliod's modules
    import pkgutil  # noqa: PLC0415

    from heliod.daemon.cli import main as cli  # noqa: PLC0415

    # Every module now, so that the children run the code as it was when the bench
    # started, even if the working tree changes meanwhile (an editable install).
    for top in ("heliod.rewards", "heliod.adapters", "heliod.daemon"):
        package = importlib.import_module(top)
        for info in pkgutil.walk_packages(package.__path__, top + "."):
            if ".migrations." not in info.name:
                importlib.import_module(info.name)

    codes: dict[int, int] = {}

    def reap(pid: int, block: bool) -> int | None:
        if pid in codes:
            return codes[pid]
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if done == 0:
            return None
        codes[pid] = os.waitstatus_to_exitcode(status)
        return codes[pid]

    for line in sys.stdin:
        verb, *rest = line.split()
        if verb == "spawn":
            config, log = rest
            pid = os.fork()
            if pid == 0:
                fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                try:
                    code = cli.main(["-c", config, "run"])
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
            codes.pop(pid, None)  # a pid the kernel used before for a child reaped here
            answer: object = pid
        elif verb == "poll":
            code = reap(int(rest[0]), block=False)
            answer = "running" if code is None else code
        else:
            answer = reap(int(rest[0]), block=True)
        print(answer, flush=True)
    return 0


class Forked:
    """The part of subprocess.Popen the bench uses, for a child of the zygote."""

    def __init__(self, zygote: Zygote, config: Path, log: Path) -> None:
        self.zygote = zygote
        self.pid = int(zygote.ask(f"spawn {config} {log}"))
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            answer = self.zygote.ask(f"poll {self.pid}")
            self.returncode = None if answer == "running" else int(answer)
        return self.returncode

    def wait(self, _timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = int(self.zygote.ask(f"wait {self.pid}"))
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Daemon:
    """`heliod run` with its output appended to one log; `ready()` reads this run's part."""

    def __init__(self, config: Path, log: Path, zygote: Zygote | None) -> None:
        self.log = log
        log.touch()
        self.offset = log.stat().st_size
        self.proc: subprocess.Popen[bytes] | Forked
        if zygote is not None:
            self.proc = Forked(zygote, config, log)
            return
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*HELIOD, "-c", str(config), "run"], stdout=out, stderr=out
            )

    def output(self) -> str:
        with self.log.open("rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace")

    def ready(self) -> bool:
        return READY_LINE in self.output()

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                print(self.output()[-3000:], file=sys.stderr)
                raise SystemExit(f"heliod did not say {text!r} ({self.proc.returncode})")
            time.sleep(0.02)


def healthz(api_port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=3) as r:
            value: dict[str, Any] = json.loads(r.read())
            return value
    except (OSError, ValueError):
        return None


def caught_up(db: Path, api_port: int, meter_values: set[int]) -> bool:
    """The last run stored every acknowledged meter value, accounted, and pushed everything."""
    health = healthz(api_port)
    if health is None or health["sync"]["pending"]:
        return False
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        stored = {
            v // 1000
            for (v,) in conn.execute("select energy_mwh from readings where device='meter1'")
        }
        last = conn.execute("select coalesce(max(id), 0) from readings").fetchone()[0]
        state = conn.execute("select state from accountant where id = 1").fetchone()
    if state is None or not meter_values <= stored:
        return False
    # Each device's last reading stays pending until a later one confirms it.
    return bool(last - LedgerState.from_json(state[0]).position <= 2)


def minted(db: Path, plant: str) -> bool:
    """The plant has at least one MWh accounted."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        state = conn.execute("select state from accountant where id = 1").fetchone()
    if state is None:
        return False
    found = LedgerState.from_json(state[0]).plants.get(plant)
    return found is not None and found.e_mwh >= MWH


def check(db: Path, config: Path, meter: list[int], platform: Platform) -> dict[str, Any]:
    """Every figure the bench prints, and the problems found (empty: nothing lost or doubled)."""
    problems: list[str] = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        readings = dict(conn.execute("select device, count(*) from readings group by device"))
        rejected = dict(
            conn.execute("select reason, count(*) from rejected_readings group by reason")
        )
        anomalies = conn.execute("select count(*) from anomalies").fetchone()[0]
        text = conn.execute("select state from accountant where id = 1").fetchone()[0]
        state = LedgerState.from_json(text)
        first = {
            d: conn.execute(
                "select energy_mwh from readings where device=? and energy_mwh is not null "
                "order by id limit 1",
                (d,),
            ).fetchone()
            for d in ("inv1", "meter1")
        }
        mints = conn.execute("select plant, mwh_index, event from mints").fetchall()
        meter_rows = [
            v for (v,) in conn.execute("select energy_mwh from readings where device='meter1'")
        ]
    figures: dict[str, Any] = {"readings": readings, "rejected_readings": rejected}
    if anomalies:
        problems.append(f"{anomalies} anomalies recorded (a kill must not look like one)")
    mwh: dict[str, int] = {}
    for plant, device in (("brassemonte", "inv1"), ("roof", "meter1")):
        e = state.plants[plant].e_mwh
        found = state.devices.get(device)
        final = found.final if found else None
        if first[device] is None or final is None:
            problems.append(f"{device}: no reading stored or confirmed")
            continue
        rise = final.value_mwh - int(first[device][0])
        if e != rise:
            problems.append(f"{plant}: accounted {e} mWh, its counter rose {rise} mWh")
        indexes = Counter(k for p, k, _ in mints if p == plant)
        k = e // MWH
        mwh[plant] = k
        doubled = sorted(i for i, n in indexes.items() if n > 1)
        if doubled:
            problems.append(f"{plant}: MWh minted twice: {doubled[:10]}")
        if sorted(indexes) != list(range(1, k + 1)):
            missing = sorted(set(range(1, k + 1)) - set(indexes))
            extra = sorted(set(indexes) - set(range(1, k + 1)))
            problems.append(f"{plant}: mints missing {missing[:10]}, beyond E {extra[:10]}")
        figures[f"energy_mwh_{plant}"] = e
    figures["mwh_minted"] = mwh

    # MQTT: what the broker acknowledged to the meter, against what is stored.
    sent = Counter(meter)
    stored = Counter(v // 1000 for v in meter_rows)
    lost = sorted(set(sent) - set(stored))
    doubled_rows = sorted(v for v, n in stored.items() if n > 1)
    invented = sorted(set(stored) - set(sent))
    figures["mqtt"] = {
        "acknowledged_to_meter": len(meter),
        "stored": len(meter_rows),
        "lost": len(lost),
        "stored_twice": len(doubled_rows),
        "not_sent": len(invented),
    }
    if lost:
        problems.append(f"MQTT: {len(lost)} acknowledged messages not stored: {lost[:5]}")
    if doubled_rows:
        problems.append(f"MQTT: {len(doubled_rows)} messages stored twice: {doubled_rows[:5]}")
    if invented:
        problems.append(f"MQTT: {len(invented)} stored values never sent: {invented[:5]}")

    # Push: every mint arrived, and only ever with the committed bytes.
    committed = {f"{p}:{k}": e.encode() for p, k, e in mints}
    arrived: dict[str, set[bytes]] = {}
    for key, body in platform.events:
        if key.startswith(("brassemonte:", "roof:")) and key.split(":")[1].isdigit():
            arrived.setdefault(key, set()).add(body)
    unsent = sorted(set(committed) - set(arrived))
    changed = sorted(k for k, bodies in arrived.items() if bodies != {committed.get(k)})
    figures["push"] = {
        "mint_events": len(committed),
        "requests": len(platform.events),
        "resent_after_kill": len(platform.events) - len(arrived),
        "bad_signatures": platform.bad_signatures,
        "cut_short_by_a_kill": platform.cut_short,
    }
    if unsent:
        problems.append(f"push: {len(unsent)} mints never reached the platform: {unsent[:5]}")
    if changed:
        problems.append(f"push: {len(changed)} events sent with other bytes: {changed[:5]}")
    if platform.bad_signatures:
        problems.append(f"push: {platform.bad_signatures} whole requests badly signed")

    verify = heliod(config, "ledger", "verify")
    figures["ledger_verify"] = "ok" if verify.returncode == 0 else "FAILED"
    if verify.returncode != 0:
        problems.append(f"ledger verify: {verify.stdout[-2000:]}{verify.stderr[-2000:]}")
    figures["problems"] = problems
    return figures


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    # The inverter's server logs every frame at debug level once a handler exists.
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    broker = Broker(work / "mqtt")
    inverter = InverterServer(
        SimulatedInverter(SteadyPower(POWER_W), lambda: datetime.now(UTC), 1_000_000.0)
    ).start()
    platform = Platform()
    api_port = free_port()
    site = work / "site"
    site.mkdir()
    config = write_site(
        site,
        api_port=api_port,
        modbus_port=inverter.port,
        mqtt_port=broker.port,
        push=platform.port,
    )
    log = site / "heliod.log"
    db = site / "state" / "heliod.db"
    import_backers(config)
    zygote = None if args.exec else Zygote()
    meter: Meter | None = None
    kills = before_ready = 0
    ready_s: list[float] = []  # spawn to READY, for the runs that got there
    started = time.monotonic()
    try:
        for n in range(args.kills):
            if args.max_minutes and time.monotonic() - started > args.max_minutes * 60:
                print(f"--max-minutes reached after {kills} kills", file=sys.stderr)
                break
            daemon = Daemon(config, log, zygote)
            spawned = time.monotonic()
            if meter is None:
                # The broker keeps messages for heliod once its persistent session exists.
                daemon.wait_for("mqtt: connected", 120)
                meter = Meter(broker.port)
            if rng.random() < args.during_start and ready_s:
                # Somewhere in start-up: the interpreter, the store opening, the first polls.
                time.sleep(rng.uniform(0.0, statistics.median(ready_s)))
            else:
                # Once serving: polling, the MQTT backlog, accounting, pushing.
                daemon.wait_for(READY_LINE, 120)
                ready_s.append(time.monotonic() - spawned)
                time.sleep(rng.uniform(0.0, args.max_delay))
            if daemon.proc.poll() is not None:
                print(daemon.output()[-3000:], file=sys.stderr)
                raise SystemExit(f"heliod exited by itself ({daemon.proc.returncode}) at run {n}")
            ready = daemon.ready()
            daemon.proc.kill()
            daemon.proc.wait(10)
            kills += 1
            before_ready += not ready
            if args.progress and kills % args.progress == 0:
                print(
                    f"{kills} kills ({before_ready} before READY), "
                    f"{time.monotonic() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        # A last run: the inverter until its plant has an MWh (a short loop may have killed
        # every run before the first), then silent sources, so that "caught up" has a
        # fixed target.
        assert meter is not None
        meter.stop()
        daemon = Daemon(config, log, zygote)
        deadline = time.monotonic() + args.catch_up
        values = set(meter.acked)
        for ready, stop in (
            (partial(minted, db, "brassemonte"), inverter.stop),
            (partial(caught_up, db, api_port, values), None),
        ):
            while not ready():
                if daemon.proc.poll() is not None or time.monotonic() > deadline:
                    print(daemon.output()[-4000:], file=sys.stderr)
                    raise SystemExit("the last run did not catch up")
                time.sleep(0.3)
            if stop is not None:
                stop()
        t0 = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(20)
        stop_s = time.monotonic() - t0
        figures = check(db, config, meter.acked, platform)
    finally:
        if zygote is not None:
            zygote.close()
        if meter is not None:
            meter.stop()
        inverter.stop()
        platform.close()
        broker.stop()
    if code != 0:
        figures["problems"].append(f"the last run exited {code} on SIGTERM")
    figures.update(
        kills=kills,
        killed_before_ready=before_ready,
        killed_after_ready=kills - before_ready,
        start_to_ready_s={
            "median": round(statistics.median(ready_s), 2),
            "max": round(max(ready_s), 2),
        },
        sigterm_stop_s=round(stop_s, 2),
        started_by="exec" if args.exec else "zygote",
        seconds=round(time.monotonic() - started),
        seed=args.seed,
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-delay", type=float, default=2.0, help="once serving, kill within this many s"
    )
    parser.add_argument(
        "--during-start", type=float, default=0.3, help="share of kills during start-up"
    )
    parser.add_argument(
        "--max-minutes", type=float, default=0, help="stop killing after this long (0: never)"
    )
    parser.add_argument("--catch-up", type=float, default=300.0, help="seconds for the last run")
    parser.add_argument("--progress", type=int, default=50, help="print every N kills (0: never)")
    parser.add_argument(
        "--exec", action="store_true", help="start the command line afresh (no zygote)"
    )
    parser.add_argument("--zygote", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    if args.zygote:
        return zygote_main()
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        figures = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="heliod-kill-loop-") as tmp:
            figures = run(args, Path(tmp))
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
    else:
        print(
            f"kills: {figures['kills']} ({figures['killed_before_ready']} before READY, "
            f"{figures['killed_after_ready']} after), {figures['seconds']} s"
        )
        print(f"readings stored: {figures['readings']}, rejected: {figures['rejected_readings']}")
        print(
            f"MWh minted: {figures['mwh_minted']} (energy exact to the mWh: "
            f"{not any('accounted' in p for p in figures['problems'])})"
        )
        print(f"MQTT: {figures['mqtt']}")
        print(f"push: {figures['push']}")
        print(
            f"ledger verify: {figures['ledger_verify']}; last SIGTERM stop: "
            f"{figures['sigterm_stop_s']} s"
        )
        print("problems: " + ("none" if not figures["problems"] else ""))
        for problem in figures["problems"]:
            print(f"  - {problem}")
    return 1 if figures["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
