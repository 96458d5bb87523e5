"""A real VictoriaMetrics for tests (it accepts InfluxDB v2 writes), and a fake InfluxDB for errors.

VictoriaMetrics (Debian package `victoria-metrics`) is started on a free loopback port
with a temporary data directory. It maps `reading,device=d,plant=p energy_wh=…` to the
series `reading_energy_wh{device="d",plant="p"}`, keeps millisecond timestamps, and with
`-dedup.minScrapeInterval=1ms` keeps one sample per timestamp, as InfluxDB overwrites a
point written twice. `/internal/force_flush` makes fresh samples searchable at once.

The fake InfluxDB is an HTTP server of the test's own, for the answers VictoriaMetrics
never gives (401, 403, 400 partial writes, 429 with Retry-After, …).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support import free_port, require_binary, wait_port


class Victoria:
    """One VictoriaMetrics process; `stop()` and `start()` again keep its data and port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.binary = require_binary("victoria-metrics")
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL, also the InfluxDB URL to write to."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Victoria:
        """Start and wait until it listens."""
        log = (self.data_dir.parent / f"victoria-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.data_dir}",
                "-retentionPeriod=100y",
                "-dedup.minScrapeInterval=1ms",
                "-search.disableCache",
                "-loggerLevel=ERROR",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        wait_port("127.0.0.1", self.port, timeout=30)
        return self

    def stop(self) -> None:
        """Stop gracefully (it flushes what it holds)."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def _get(self, path: str, params: list[tuple[str, str]] | None = None) -> bytes:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=30) as answer:
            return bytes(answer.read())

    def flush(self) -> None:
        """Make every accepted sample searchable."""
        self._get("/internal/force_flush")

    def export(self, match: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], dict[int, float]]:
        """{(metric, sorted labels): {timestamp ms: value}} of every series matching `match`."""
        self.flush()
        text = self._get("/api/v1/export", [("match[]", match)]).decode()
        out: dict[tuple[str, tuple[tuple[str, str], ...]], dict[int, float]] = {}
        for line in text.splitlines():
            item = json.loads(line)
            labels = dict(item["metric"])
            name = labels.pop("__name__")
            series = out.setdefault((name, tuple(sorted(labels.items()))), {})
            series.update(zip(item["timestamps"], item["values"], strict=True))
        return out


@dataclass
class Request:
    """One request the fake InfluxDB received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # arrival, for backoff timings


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class FakeInflux:
    """An HTTP server answering /api/v2/write with `answer(request)`; records every request."""

    answer: Callable[[Request], Answer] = field(default=lambda _r: (204, {}, b""))
    requests: list[Request] = field(default_factory=list)
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                parsed = urllib.parse.urlparse(self.path)
                request = Request(
                    parsed.path,
                    urllib.parse.parse_qs(parsed.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                fake.requests.append(request)
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                status, headers, body = fake.answer(request)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """Base URL of the fake."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """An InfluxDB 2 style error answer: JSON {"code", "message"}."""
    body = json.dumps({"code": "error", "message": message}).encode()
    return status, {"Content-Type": "application/json", **(headers or {})}, body
