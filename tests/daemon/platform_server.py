"""A crowdfunding platform's receiving end on a free loopback port, with faults on demand.

It verifies each signature independently of heliod's code (the recipe of docs/platform.md),
signs each share register answer the same way (`Heliod-Signature` over the raw answer;
`answer_signing` makes it wrong, stale or absent on demand),
keeps every body it received, deduplicates by Idempotency-Key as a platform should, and
answers each POST as the next scripted fault says: "ok", "409", "500", "503", "429",
"reject" (422), "301" (a redirect), "timeout" (answers too late), "drop" (closes the connection in the middle
of its answer). An event counts as received the moment its body is read, before the
answer: that is what makes resends (and their byte-for-byte identity) observable.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import free_port

TOLERANCE_S = 300  # the replay window docs/platform.md advises


def sign(secret: str, body: bytes, t: int) -> str:
    """The platform's Heliod-Signature for an answer: t and HMAC-SHA256(secret, "t.body")."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float) -> bool:
    """The platform's check: t within the window and v1 = HMAC-SHA256(secret, "t.body")."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - t) > TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class Received:
    """One POST as the platform saw it."""

    key: str
    body: bytes
    signed: bool
    answer: str
    at: float


@dataclass
class Platform:
    """The test platform; `start()` it, script `faults`, read `received` and `events`."""

    secret: str
    port: int = field(default_factory=free_port)
    slow_s: float = 0.0  # delay before each answer
    answer_late_s: float = 1.5  # how late a "timeout" answers
    faults: deque[str] = field(default_factory=deque)  # answers of the next POSTs
    reject: set[str] = field(default_factory=set)  # Idempotency-Keys always answered 422
    backers: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # plant -> answer
    received: list[Received] = field(default_factory=list)
    gets: list[tuple[str, bool]] = field(default_factory=list)  # (path, signature valid)
    events: dict[str, bytes] = field(default_factory=dict)  # deduplicated by key
    on_receive: Callable[[str], None] | None = None
    # How register answers are signed: "ok", "none" (no header), "stale" (t an hour ago),
    # "other-secret", or "tampered" (signed, then a byte of the body changed on the way).
    answer_signing: str = "ok"
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _connections: set[socket.socket] = field(default_factory=set)

    @property
    def url(self) -> str:
        """Where heliod pushes."""
        return f"http://127.0.0.1:{self.port}/events"

    @property
    def backers_url(self) -> str:
        """Where heliod pulls a plant's register."""
        return f"http://127.0.0.1:{self.port}/backers/{{plant}}"

    def arrivals(self) -> list[str]:
        """Idempotency-Keys in the order the POSTs arrived (duplicates included)."""
        with self.lock:
            return [r.key for r in self.received]

    def start(self) -> Platform:
        """Listen (again) on `port`."""
        platform = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def process_request(self, request: Any, client_address: Any) -> None:
                platform._connections.add(request)
                super().process_request(request, client_address)

        self._server = Server(("127.0.0.1", self.port), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection: the platform is down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._connections.clear()


def _handler(platform: Platform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            """Quiet."""

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            key = self.headers.get("Idempotency-Key", "")
            signed = verify(
                platform.secret, self.headers.get("Heliod-Signature", ""), body, time.time()
            )
            with platform.lock:
                answer = (
                    "reject"
                    if key in platform.reject
                    else (platform.faults.popleft() if platform.faults else "ok")
                )
                duplicate = key in platform.events
                if signed and answer not in ("reject",):
                    platform.events.setdefault(key, body)
                platform.received.append(Received(key, body, signed, answer, time.time()))
            if platform.on_receive is not None:
                platform.on_receive(key)
            time.sleep(platform.slow_s)
            if not signed:
                self._answer(401, b'{"error":"bad signature"}')
            elif answer == "ok":
                self._answer(409 if duplicate else 200, b'{"ok":true}')
            elif answer in ("409", "500", "503"):
                self._answer(int(answer), b'{"error":"scripted"}')
            elif answer == "301":
                self._answer(301, b"", {"Location": "https://elsewhere.example/events"})
            elif answer == "429":
                self._answer(429, b'{"error":"slow down"}', {"Retry-After": "0"})
            elif answer == "reject":
                self._answer(422, b'{"error":"unknown plant for this account"}')
            elif answer == "timeout":
                time.sleep(platform.answer_late_s)
                self._answer(200, b'{"ok":true}')
            elif answer == "drop":
                # Headers promise 100 bytes; one arrives, then the connection dies.
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        def do_GET(self) -> None:
            signed = verify(
                platform.secret, self.headers.get("Heliod-Signature", ""), b"", time.time()
            )
            plant = self.path.rsplit("/", 1)[-1]
            with platform.lock:
                platform.gets.append((self.path, signed))
                status, body = platform.backers.get(plant, (404, b'{"error":"no such plant"}'))
            if not signed:
                status, body = 401, b'{"error":"bad signature"}'
            self._answer(status, body, _answer_signature(platform, body))

    return Handler


def _answer_signature(platform: Platform, body: bytes) -> dict[str, str]:
    how, now = platform.answer_signing, int(time.time())
    if how == "none":
        return {}
    if how == "stale":
        return {"Heliod-Signature": sign(platform.secret, body, now - 3600)}
    if how == "other-secret":
        return {"Heliod-Signature": sign("not-" + platform.secret, body, now)}
    if how == "tampered":
        return {"Heliod-Signature": sign(platform.secret, body.replace(b"1", b"9", 1), now)}
    return {"Heliod-Signature": sign(platform.secret, body, now)}


def backers_body(rows: list[dict[str, Any]]) -> bytes:
    """A backers_url answer."""
    return json.dumps({"backers": rows}).encode()
