"""systemd notification (sd_notify) and a watchdog that only pings while work advances.

The protocol is one datagram of `KEY=VALUE` lines to the AF_UNIX socket named by
$NOTIFY_SOCKET (a path, or `@name` in the abstract namespace), see sd_notify(3). That is a
dozen lines with the standard library, so heliod sends it itself rather than depend on the
`sdnotify` package (unmaintained since 2017, no abstract-socket support, swallows errors).

The watchdog is not a timer thread: the main loop asks `Watchdog.due()` and pings only
when the scheduler ran its heartbeat job and the store committed within the window. A
wedged scheduler or a store that no longer commits stops the pings and systemd restarts
the service; a dead device does neither, so it never causes a restart.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

log = logging.getLogger("heliod.systemd")


class Notifier:
    """Sends sd_notify messages; does nothing when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # The abstract namespace is written with a leading "@" and sent with a NUL.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when $NOTIFY_SOCKET was set."""
        return bool(self._address)

    def notify(self, *lines: str) -> bool:
        """Send one datagram; False (logged once at debug) when it could not be sent."""
        if not self._address:
            return False
        data = "\n".join(lines).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(data, self._address)
            except OSError as exc:
                log.debug("sd_notify failed: %s", exc)
                return False
        return True

    def ready(self, status: str = "") -> bool:
        """READY=1: start-up is complete (Type=notify)."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """WATCHDOG=1: the daemon is alive and its work advances."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        """STOPPING=1: shutdown has begun."""
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """STATUS=…: one line shown by `systemctl status`."""
        return self.notify(f"STATUS={text}")

    def close(self) -> None:
        """Release the socket."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


@contextmanager
def starting(
    status: str,
    *,
    notifier: Notifier | None = None,
    every_s: float = 10.0,
    limit_s: float = 3600.0,
) -> Iterator[None]:
    """While the block runs: STATUS=`status`, and EXTEND_TIMEOUT_USEC every `every_s`
    (through `notifier`, or one of its own for $NOTIFY_SOCKET).

    Opening the store checks its integrity and migrates its schema, which on a large
    store on an SD card takes longer than systemd's start timeout (90 s by default):
    killed there, the service would restart into the same migration forever. Each
    extension gives systemd three more periods to wait from now; after `limit_s` they
    stop, so a start that hangs still fails (docs/operations.md).
    """
    own = notifier is None
    notifier = Notifier() if notifier is None else notifier
    if not notifier.enabled:
        yield
        return
    notifier.status(status)
    done = threading.Event()
    usec = int(every_s * 3 * 1_000_000)

    def extend() -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            notifier.notify(f"EXTEND_TIMEOUT_USEC={usec}")
            if done.wait(every_s):
                return

    thread = threading.Thread(target=extend, name="start-timeout", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(1.0)
        if own:
            notifier.close()


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """$WATCHDOG_USEC in seconds when it is meant for this process, else None."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000


class Watchdog:
    """Progress marks from the scheduler and the store; `due()` says whether to ping now.

    `window_s` is how old the last mark of each kind may be: half of WatchdogSec by
    default, so one missed heartbeat does not get the service killed but a wedge of
    half the watchdog period stops the pings.
    """

    KINDS = ("heartbeat", "commit")

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        now = clock()
        self._marks = dict.fromkeys(self.KINDS, now)
        self._lock = threading.Lock()

    def mark(self, kind: str) -> None:
        """Record that `kind` ("heartbeat" or "commit") just made progress."""
        if kind not in self._marks:
            raise ValueError(f"unknown progress kind {kind!r}")
        now = self._clock()
        with self._lock:
            self._marks[kind] = now

    def age(self, kind: str) -> float:
        """Seconds since `kind` last made progress."""
        with self._lock:
            return self._clock() - self._marks[kind]

    def stalled(self) -> list[str]:
        """The kinds whose last progress is older than the window."""
        return [k for k in self.KINDS if self.age(k) > self.window_s]

    def due(self) -> bool:
        """True when every kind made progress within the window."""
        return not self.stalled()
