"""A platform that answers one byte at a time, for the deadline tests (docs/platform.md, "Deadlines").

A plain socket server of the test's own, one thread per connection: it reads a request
(head and Content-Length body), records its path and Idempotency-Key, then either
answers at once or, when `trickles(path, key)` says so, sends a valid answer one byte
every `every_s` seconds, from the status line on. httpx's timeout bounds each read, so
only an overall deadline stops such a request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@dataclass
class Trickle:
    """Listening on a free loopback port once started; `requests` lists (path, key) seen."""

    trickles: Callable[[str, str], bool] = lambda _path, _key: True
    every_s: float = 2.0
    requests: list[tuple[str, str]] = field(default_factory=list)
    trickling: int = 0  # connections trickling right now
    lock: threading.Lock = field(default_factory=threading.Lock)
    _sock: socket.socket | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """http://127.0.0.1:port"""
        assert self._sock is not None
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> Trickle:
        """Listen and serve on a thread."""
        self._sock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop accepting; trickling connections end at their next byte."""
        self._stopped.set()
        if self._sock is not None:
            self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while not self._stopped.is_set():
                request = _read_request(conn)
                if request is None:
                    return
                path, key = request
                with self.lock:
                    self.requests.append((path, key))
                if not self.trickles(path, key):
                    conn.sendall(ANSWER)
                    continue
                with self.lock:
                    self.trickling += 1
                try:
                    for byte in ANSWER:
                        if self._stopped.wait(self.every_s):
                            return
                        conn.sendall(bytes([byte]))
                finally:
                    with self.lock:
                        self.trickling -= 1


def _read_request(conn: socket.socket) -> tuple[str, str] | None:
    """(path, Idempotency-Key) of the next request on `conn`, its body read; None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return lines[0].split(" ")[1], headers.get("idempotency-key", "")


def elapsed(call: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Seconds `call` took, and what it raised (None when it returned)."""
    started = time.monotonic()
    try:
        call()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None
