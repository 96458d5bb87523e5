"""The HTTP server of the daemon: uvicorn run programmatically in its own thread.

uvicorn's `Server.serve()` is an asyncio coroutine; run in a thread with its own event
loop it fits the rest of the daemon (threads and a BackgroundScheduler) and stops when
`should_exit` is set. Outside the main thread uvicorn leaves signals alone: SIGTERM
belongs to the runtime.

What one client can hold is bounded (docs/operations.md, "Exposing the API"): at most
`max_connections` connections, a request head of 16 KiB, a request that must arrive
whole within `request_timeout_s` of the connection (or of the previous answer), and an
idle keep-alive connection closed after `keep_alive_s`. uvicorn bounds the head's size
and the keep-alive, but arms its keep-alive timer only after an answer: a connection
that never sends a byte, or sends one a second, is kept forever, and its
`limit_concurrency` only answers 503 to requests that already hold a connection. So the
cap and the request deadline are enforced here, in a subclass of uvicorn's h11 protocol:
at the cap, the connection that has waited longest for its request is closed to make
room (an idle or slow client never locks out `/healthz`), unless its request already
waits unread in its socket (a loop that fell behind accepts a burst of connections
before it reads any of them); if every connection is busy answering, the new one is
closed.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import logging
import resource
import socket
import termios
import threading
import time
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("heliod.http")

MAX_HEAD_BYTES = 16 * 1024  # h11's incomplete-event limit: a longer request head is refused
_FD_SHARE = 4  # at most a quarter of the open-files limit goes to HTTP connections
_FD_RESERVED = 32  # the rest of the daemon: store, devices, MQTT, platform, logs (~11 seen)


def connection_cap(open_files: int) -> int:
    """HTTP connections allowed under an open-files limit: a quarter, 8 to 256."""
    return max(8, min(256, (open_files - _FD_RESERVED) // _FD_SHARE))


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may hold: connections, time to send a request, idle time."""

    max_connections: int
    request_timeout_s: float = 10.0
    keep_alive_s: int = 5
    backlog: int = 16  # accepts per loop turn: descriptors in transit at once
    # Connections the kernel holds for us until accepted (they take none of our
    # descriptors; the kernel caps this at net.core.somaxconn, 4096 by default): a client
    # whose connection finds the queue full waits a second for the kernel to retry, or is
    # reset. A flood faster than the loop accepts fills a short queue at once; this one
    # holds thousands (uvicorn's own default), drained `backlog` at a time.
    listen_queue: int = 2048

    @classmethod
    def for_this_process(cls) -> Limits:
        """The cap from RLIMIT_NOFILE (systemd's LimitNOFILE=), the other bounds as set."""
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return cls(connection_cap(soft if soft != resource.RLIM_INFINITY else 4096))


def bounded_protocol(limits: Limits) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a connection cap and a whole-request deadline."""

    class Bounded(H11Protocol):
        waiting_since: float | None = None  # loop time the connection began to wait
        _late: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_request()
            _make_room(self, self.connections, limits.max_connections)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._late is not None:
                self._late.cancel()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_request()

        def waiting(self) -> bool:
            """True while the client owes us (the rest of) a request: nothing to answer."""
            return self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and (
                self.cycle is None or self.cycle.response_complete
            )

        def _await_request(self) -> None:
            if self._late is not None:
                self._late.cancel()
            self.waiting_since = self.loop.time()
            self._late = self.loop.call_later(limits.request_timeout_s, self._too_late)

        def _too_late(self) -> None:
            if self.waiting() and not self.transport.is_closing():
                self.transport.close()

    return Bounded


def _make_room(newcomer: Any, connections: set[Any], cap: int) -> None:
    """Over the cap: close the connection waiting longest for its request, else the newcomer."""
    # A closed transport leaves `connections` only at the loop's next turn: not counted.
    open_ = [c for c in connections if not c.transport.is_closing()]
    if len(open_) <= cap:
        return
    idle = sorted(
        (c for c in open_ if c is not newcomer and c.waiting()), key=lambda c: c.waiting_since
    )
    victim = next((c for c in idle if not _unread(c.transport)), newcomer)
    victim.transport.close()


def _unread(transport: asyncio.BaseTransport) -> bool:
    """True when bytes the client sent wait in the socket, not yet read by the loop."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    count = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, count, True)
    except OSError:
        return False
    return count[0] > 0


class HttpServer:
    """One uvicorn server on (host, port) in a background thread; port 0 picks a free one."""

    def __init__(self, app: Any, host: str, port: int, limits: Limits | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.limits = limits or Limits.for_this_process()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Bind and serve; returns once listening, raises if the port cannot be bound."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self.port = sock.getsockname()[1]
        limits = self.limits
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
            http=bounded_protocol(limits),
            ws="none",
            timeout_keep_alive=limits.keep_alive_s,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            backlog=limits.backlog,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._error = None

        def serve() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as exc:
                self._error = exc
                log.error("HTTP server crashed", exc_info=exc)
            finally:
                sock.close()

        self._thread = threading.Thread(target=serve, name="heliod-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        # A pause on an Event rather than time.sleep, whose absolute deadline libfaketime
        # (tests/e2e/test_clock_jump.py runs heliod under it) turns into EINVAL.
        pause = threading.Event()
        try:
            while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
                pause.wait(0.01)
            if not server.started:
                raise RuntimeError(f"HTTP server did not start on {self.host}:{self.port}")
            # asyncio listens with `backlog` and accepts as many per turn; the queue is
            # made longer afterwards (listen again), the accepts per turn stay `backlog`.
            sock.listen(max(limits.listen_queue, limits.backlog))
        except BaseException:
            # The supervisor starts a fresh one later: this one must not keep the port,
            # even if its thread is slow to end.
            self.stop(1.0)
            sock.close()
            raise

    def alive(self) -> bool:
        """True while the server thread serves."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Finish the requests in flight (bounded), close the listening socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(1.0)
        self._thread = None

    @property
    def url(self) -> str:
        """http://host:port/ of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"
