"""What one client can hold on the HTTP server: connections, time to send a request, idle time.

The daemon's HttpServer (uvicorn in a thread) with short bounds, over a bare ASGI app,
and real sockets that never send, send one byte at a time, or keep a connection open.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from heliod.daemon.boot.httpserver import HttpServer, Limits, connection_cap
from heliod.daemon.boot.logs import ACCEPT_EXHAUSTED, RateLimited

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"


class App:
    """Answers 200 at once; `/slow` waits until `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.stalled = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/stall":  # holds the whole event loop: nothing is read or accepted
            self.stalled.set()
            time.sleep(1.0)
        if scope["path"] == "/slow":
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


@pytest.fixture
def app() -> Iterator[App]:
    """The app; its slow requests are released at the end."""
    application = App()
    yield application
    application.release.set()


def serve(app: App, **limits: Any) -> HttpServer:
    """The daemon's server with these limits, listening on a free loopback port."""
    server = HttpServer(app, "127.0.0.1", 0, Limits(**limits))
    server.start()
    return server


def connect(server: HttpServer) -> socket.socket:
    """A TCP connection to the server."""
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def closed_by_server(sock: socket.socket, within_s: float) -> float | None:
    """Seconds until the server closed `sock` (reading nothing or an answer), None if not."""
    started = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - started < within_s:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
        if not data:
            return time.monotonic() - started
    return None


def get(server: HttpServer, path: str = "/healthz") -> bytes:
    """One request on a new connection; the status line."""
    with connect(server) as sock:
        sock.sendall(REQUEST.replace(b"/healthz", path.encode()))
        return sock.recv(65536).split(b"\r\n", 1)[0]


def test_a_connection_that_never_sends_is_closed_after_the_bound(app: App) -> None:
    server = serve(app, max_connections=8, request_timeout_s=1.0)
    try:
        with connect(server) as silent:
            took = closed_by_server(silent, 5.0)
        assert took is not None and 0.8 <= took < 3.0
    finally:
        server.stop()


def test_a_client_sending_one_header_byte_a_second_is_cut_off(app: App) -> None:
    server = serve(app, max_connections=8, request_timeout_s=1.5)
    try:
        with connect(server) as slow:
            started, sent = time.monotonic(), 0
            try:
                for byte in REQUEST:
                    slow.sendall(bytes([byte]))
                    sent += 1
                    if closed_by_server(slow, 0.3) is not None:
                        break
            except OSError:
                pass
            took = time.monotonic() - started
        assert sent < len(REQUEST)  # never got to finish its request
        assert 1.2 <= took < 4.0
        assert get(server) == b"HTTP/1.1 200 OK"  # the others are served all along
    finally:
        server.stop()


def test_an_idle_keep_alive_connection_is_closed(app: App) -> None:
    server = serve(app, max_connections=8, keep_alive_s=1, request_timeout_s=30.0)
    try:
        with connect(server) as sock:
            sock.sendall(REQUEST)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
            took = closed_by_server(sock, 5.0)
        assert took is not None and took < 3.0
    finally:
        server.stop()


def test_at_the_cap_the_longest_waiting_connection_makes_room(app: App) -> None:
    server = serve(app, max_connections=4, request_timeout_s=30.0)
    try:
        idle = [connect(server) for _ in range(4)]
        time.sleep(0.2)  # all four accepted and waiting for a request
        assert get(server) == b"HTTP/1.1 200 OK"  # a fifth comes in: the oldest idle goes
        assert closed_by_server(idle[0], 2.0) is not None
        assert all(closed_by_server(s, 0.2) is None for s in idle[1:])
        for sock in idle:
            sock.close()
    finally:
        server.stop()


def test_a_request_already_received_is_not_closed_to_make_room(app: App) -> None:
    # While the loop stalls, a client connects and sends its request, then four idle
    # connections queue behind it: when the loop resumes, all five are accepted before
    # anything is read, and the request that waits unread in its socket must be answered.
    server = serve(app, max_connections=4, request_timeout_s=30.0)
    stalling = threading.Thread(target=get, args=(server, "/stall"))
    try:
        stalling.start()
        assert app.stalled.wait(5.0)
        with connect(server) as client:
            client.sendall(REQUEST)
            idle = [connect(server) for _ in range(4)]
            stalling.join()
            assert client.recv(65536).split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"
        assert closed_by_server(idle[0], 2.0) is not None  # the oldest idle one made room
        for sock in idle:
            sock.close()
    finally:
        stalling.join()
        server.stop()


def test_a_flood_waits_in_the_kernels_queue_rather_than_being_dropped(app: App) -> None:
    # While the loop stalls nothing is accepted: connections wait in the kernel's queue.
    # With a queue as short as the accepts per turn (16), the 17th connection's handshake
    # would be dropped (its client waits a second for a retry, or is reset); the queue is
    # longer, so a flood of 60 all connect at once and the last one is answered.
    server = serve(app, max_connections=64, request_timeout_s=30.0)
    stalling = threading.Thread(target=get, args=(server, "/stall"))
    flood: list[socket.socket] = []
    try:
        stalling.start()
        assert app.stalled.wait(5.0)
        for _ in range(60):
            flood.append(socket.create_connection(("127.0.0.1", server.port), timeout=0.5))
        flood[-1].sendall(REQUEST)
        stalling.join()
        assert flood[-1].recv(65536).split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"
    finally:
        for sock in flood:
            sock.close()
        stalling.join()
        server.stop()


def test_when_every_connection_is_busy_the_newcomer_is_refused(app: App) -> None:
    server = serve(app, max_connections=2, request_timeout_s=30.0)
    busy = [connect(server) for _ in range(2)]
    try:
        for sock in busy:
            sock.sendall(REQUEST.replace(b"/healthz", b"/slow"))
        time.sleep(0.3)  # both requests are being answered
        with connect(server) as newcomer:
            assert closed_by_server(newcomer, 2.0) is not None
        app.release.set()
        for sock in busy:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    finally:
        for sock in busy:
            sock.close()
        server.stop()


def test_the_cap_follows_the_open_files_limit() -> None:
    assert connection_cap(128) == 24
    assert connection_cap(1024) == 248  # systemd/heliod.service's LimitNOFILE=
    assert connection_cap(65536) == 256
    assert connection_cap(40) == 8


def test_the_accept_failure_line_is_rate_limited() -> None:
    now = [0.0]
    records: list[logging.LogRecord] = []
    limited = RateLimited([ACCEPT_EXHAUSTED], every_s=60.0, clock=lambda: now[0])

    def emit(message: str) -> None:
        record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)
        if limited.filter(record):
            records.append(record)

    for _ in range(100_000):  # what one event-loop turn can log, many times over
        emit(f"{ACCEPT_EXHAUSTED}\nsocket: <fd=6>")
    emit("another asyncio error")
    now[0] = 61.0
    emit(f"{ACCEPT_EXHAUSTED}\nsocket: <fd=6>")
    messages = [r.getMessage() for r in records]
    assert messages == [
        f"{ACCEPT_EXHAUSTED}\nsocket: <fd=6>",
        "another asyncio error",
        f"{ACCEPT_EXHAUSTED} (again; 99999 more not logged)",
    ]


def test_a_request_head_over_16_kib_is_refused(app: App) -> None:
    server = serve(app, max_connections=8)
    try:
        with connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Pad: " + b"a" * 17_000)
            assert sock.recv(65536).split(b"\r\n", 1)[0] == b"HTTP/1.1 400 Bad Request"
        assert get(server) == b"HTTP/1.1 200 OK"
    finally:
        server.stop()
