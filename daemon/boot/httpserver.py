"""The HTTP server of the daemon: uvicorn run programmatically in its own thread.

uvicorn's `Server.serve()` is an asyncio coroutine; run in a thread with its own event
loop it fits the rest of the daemon (threads and a BackgroundScheduler) and stops when
`should_exit` is set. Outside the main thread uvicorn leaves signals alone: SIGTERM
belongs to the runtime.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import uvicorn

log = logging.getLogger("heliod.http")


class HttpServer:
    """One uvicorn server on (host, port) in a background thread; port 0 picks a free one."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
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
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
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
