"""Real parts for end-to-end tests: `heliod run` as a subprocess, a simulated inverter, a platform.

The inverter is heliod's own demo simulator (a pymodbus server serving SunSpec models 1
and 103) producing a steady power on the real clock; the platform is an HTTP server of
the test's own that checks every signature and records every event and its headers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from heliod.daemon.cli.simulator import InverterServer, SimulatedInverter, SteadyPower
from tests.adapters.mqtt.broker import Broker, Publisher
from tests.support import free_port

HELIOD = [sys.executable, "-m", "heliod.daemon.cli.main"]
TOKEN = "e2e-token-0123456789abcdef"
TOKEN_SHA256 = hashlib.sha256(TOKEN.encode()).hexdigest()
PLATFORM_SECRET = "e2e-platform-secret-do-not-log"
# 1 GW of steady power: one MWh every 3.6 s of real time, so a test sees several. The
# plant's capacity matches it, so a gap of any length between readings stays plausible (docs/accounting.md).
POWER_W = 1_000_000_000.0
CAPACITY_KW = 1_000_000


def steady_inverter(power_w: float = POWER_W) -> InverterServer:
    """A SunSpec inverter on a free loopback port producing `power_w` on the real clock."""
    inverter = SimulatedInverter(SteadyPower(power_w), lambda: datetime.now(UTC), 1_000_000.0)
    return InverterServer(inverter).start()


def config_text(
    *,
    api_port: int,
    modbus_port: int,
    mqtt_url: str | None = None,
    influx_url: str | None = None,
    platform_url: str | None = None,
    poll: str = "500ms",
    goals: str = "",
) -> str:
    """A heliod.toml with a plant on the inverter and, when given, MQTT, export and push;
    `goals` (TOML tables: impact, milestones, challenges) go into that plant."""
    parts = [
        '[daemon]\nstate_dir = "state"\nlog_level = "info"\n',
        f'[api]\nlisten = "127.0.0.1:{api_port}"\n'
        f'tokens = [{{ name = "e2e", sha256 = "{TOKEN_SHA256}" }}]\n',
    ]
    if mqtt_url:
        parts.append(f'[mqtt]\nurl = "{mqtt_url}"\nclient_id = "heliod-e2e"\n')
    if influx_url:
        parts.append(
            f'[influxdb]\nurl = "{influx_url}"\norg = "solar"\nbucket = "heliod"\n'
            'token_file = "influx.token"\nbatch_size = 500\n'
        )
    if platform_url:
        parts.append(
            f'[platform]\npush_url = "{platform_url}/events"\nsecret_file = "platform.secret"\n'
            f'backers_url = "{platform_url}/backers/{{plant}}"\ntimeout = "2s"\n'
            'retry_max_interval = "2s"\n'
        )
    parts.append(
        f"""[[plants]]
id = "brassemonte"
name = "Centrale de Brassemonte (simulated)"
capacity_kw = {CAPACITY_KW}
timezone = "Europe/Paris"
energy_devices = ["inv1"]

[plants.reward]
symbol = "SLR"
tokens_per_mwh = "1"
decimals = 8
{goals}
[[plants.devices]]
id = "inv1"
protocol = "modbus"
host = "127.0.0.1"
port = {modbus_port}
poll_interval = "{poll}"
timeout = "1s"
"""
    )
    if mqtt_url:
        parts.append(
            """[[plants]]
id = "roof"
capacity_kw = 100
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
fields.energy_wh = { path = "ENERGY.Total", unit = "kWh" }
fields.power_w = { path = "ENERGY.Power", unit = "W" }
timestamp = { path = "Time" }
interval = "1s"
"""
        )
    return "\n".join(parts)


def write_config(folder: Path, **kwargs: Any) -> Path:
    """Write heliod.toml and its secret files into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "influx.token").write_text("unused-by-victoriametrics\n")
    (folder / "platform.secret").write_text(PLATFORM_SECRET + "\n")
    path = folder / "heliod.toml"
    path.write_text(config_text(**kwargs))
    return path


def heliod(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one heliod command to completion."""
    return subprocess.run(
        [*HELIOD, "-c", str(config), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Daemon:
    """`heliod run` as a subprocess, its stderr in a file."""

    def __init__(
        self,
        config: Path,
        api_port: int,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,  # e.g. lower a resource limit
    ) -> None:
        self.config = config
        self.api = f"http://127.0.0.1:{api_port}"
        self.log_path = config.parent / "heliod.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*HELIOD, "-c", str(config), "run"],
                stdout=log,
                stderr=log,
                env={**os.environ, **(env or {})},
                preexec_fn=preexec_fn,  # noqa: PLW1509 - the test's own child, no threads
            )

    def log(self) -> str:
        """What the daemon wrote so far."""
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, token: bool = True) -> tuple[int, Any]:
        """GET a route; (status, parsed JSON or text); (0, None) when nothing answers."""
        request = urllib.request.Request(self.api + path)
        if token:
            request.add_header("Authorization", f"Bearer {TOKEN}")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except OSError:
            return 0, None
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Poll `check` until it returns something truthy; fail with the daemon's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"heliod exited ({self.proc.returncode}) waiting for {what}:\n{self.log()}"
                )
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()[-4000:]}")

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL, no chance to clean up."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@dataclass
class Platform:
    """The crowdfunding platform: records signed events, serves a share register."""

    secret: str = PLATFORM_SECRET
    register: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    fail_next: int = 0  # answer 503 to this many pushes (retries must follow)
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        platform = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = platform.signed(self.headers.get("Heliod-Signature", ""), body)
                with platform._lock:
                    if not ok:
                        platform.bad_signatures += 1
                        self._answer(401, b"{}")
                        return
                    if platform.fail_next > 0:
                        platform.fail_next -= 1
                        self._answer(503, b"{}")
                        return
                    platform.events.append(
                        {"key": self.headers.get("Idempotency-Key"), "body": body}
                    )
                self._answer(200, b"{}")

            def do_GET(self) -> None:
                plant = self.path.rsplit("/", 1)[-1]
                ok = platform.signed(self.headers.get("Heliod-Signature", ""), b"")
                rows = platform.register.get(plant, [])
                body = json.dumps({"backers": rows}).encode()
                # The answer is signed like a request: HMAC-SHA256(secret, "<t>.<raw body>").
                t = int(time.time())
                mac = hmac.new(platform.secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
                signature = {"Heliod-Signature": f"t={t},v1={mac.hexdigest()}"}
                self._answer(200 if ok else 401, body, signature)

            def _answer(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """http://127.0.0.1:port"""
        return f"http://127.0.0.1:{self.port}"

    def signed(self, header: str, body: bytes) -> bool:
        """True when `Heliod-Signature: t=…,v1=…` is HMAC-SHA256(secret, "<t>.<body>") and fresh."""
        try:
            parts = dict(item.split("=", 1) for item in header.split(","))
            t = int(parts["t"])
        except (KeyError, ValueError):
            return False
        expected = hmac.new(self.secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
        fresh = abs(time.time() - t) < 300
        return fresh and hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))

    def received(self) -> list[dict[str, Any]]:
        """The acknowledged events so far, in arrival order."""
        with self._lock:
            return list(self.events)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


class Lines:
    """A subprocess's stdout read line by line on a thread, for tests that follow it."""

    def __init__(self, stream: Any) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.queue.put(line)

    def next_json(self, timeout: float) -> dict[str, Any]:
        """The next line that is a JSON object."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.queue.get(timeout=max(0.01, deadline - time.monotonic()))
            self.seen.append(line)
            if line.startswith("{"):
                value: dict[str, Any] = json.loads(line)
                return value


class Meter:
    """A Tasmota-like meter publishing its counter every 0.2 s at QoS 1 (payload time in UTC)."""

    def __init__(self, broker: Broker) -> None:
        self.publisher = Publisher(broker, client_id="meter1")
        self.total_wh = 5_000_000  # 5 MWh on the counter already
        self.sent: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.total_wh += 1  # 1 Wh per 0.2 s: 18 kW on a 100 kW roof
            ts = datetime.now(UTC).isoformat(timespec="milliseconds")
            total_kwh = Decimal(self.total_wh) / 1000
            text = f'{{"Time":"{ts}","ENERGY":{{"Total":{total_kwh},"Power":18000}}}}'
            self.publisher.publish([("tele/meter1/SENSOR", text.encode())])
            self.sent.append(self.total_wh)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.publisher.close()
