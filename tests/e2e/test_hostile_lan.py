"""`heliod run` with 128 open files against 500 idle connections and a client sending one
header byte a second: /healthz keeps answering within 1 s, the log stays small, the
daemon keeps running (docs/operations.md, "Exposing the API")."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import threading
import time
import urllib.request
from pathlib import Path

from tests.e2e.harness import Daemon, steady_inverter, write_config
from tests.support import free_port

OPEN_FILES = 128
IDLE = 500
WINDOW_S = 5.0


def _low_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


def _healthz(url: str) -> tuple[int | str, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as answer:
            answer.read()
            return answer.status, time.monotonic() - started
    except OSError as exc:
        return repr(exc), time.monotonic() - started


class Watch:
    """Samples the daemon's open descriptors and /healthz on threads."""

    def __init__(self, daemon: Daemon) -> None:
        self.pid = daemon.proc.pid
        self.url = daemon.api
        self.peak_fds = 0
        self.answers: list[tuple[int | str, float]] = []
        self.stop = threading.Event()
        threading.Thread(target=self._fds, daemon=True).start()
        threading.Thread(target=self._health, daemon=True).start()

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def _fds(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(OSError):
                self.peak_fds = max(self.peak_fds, self.fds())
            time.sleep(0.001)

    def _health(self) -> None:
        while not self.stop.is_set():
            self.answers.append(_healthz(self.url))
            time.sleep(0.25)


def _slow_client(port: int, stop: threading.Event, outcome: list[str]) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for byte in request:
            if stop.wait(1.0):
                outcome.append("still open at the end")
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                outcome.append("closed by the server")
                return
    outcome.append("sent it all")


def test_idle_and_slow_clients_cannot_exhaust_the_daemon(tmp_path: Path) -> None:
    inverter = steady_inverter(power_w=100_000_000.0)  # a mint every 36 s: a quiet log
    api_port = free_port()
    config = write_config(tmp_path, api_port=api_port, modbus_port=inverter.port)
    daemon = Daemon(config, api_port, preexec_fn=_low_open_files)
    idle: list[socket.socket] = []
    try:
        daemon.wait_for("the API", lambda: daemon.get("/healthz", token=False)[0] == 200)
        time.sleep(1.0)
        # The baseline: what the daemon logs in a window without any attack.
        before = daemon.log_path.stat().st_size
        time.sleep(WINDOW_S)
        quiet_bytes = daemon.log_path.stat().st_size - before
        watch = Watch(daemon)
        baseline_fds = watch.fds()
        stop, slow = threading.Event(), []
        threading.Thread(target=_slow_client, args=(api_port, stop, slow), daemon=True).start()
        attack_started = time.monotonic()
        before = daemon.log_path.stat().st_size
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", api_port), timeout=5))
        connected_s = time.monotonic() - attack_started
        time.sleep(max(0.0, WINDOW_S - connected_s))
        attack_bytes = daemon.log_path.stat().st_size - before
        attack_s = time.monotonic() - attack_started
        stop.set()
        watch.stop.set()
        time.sleep(1.1)
        assert daemon.proc.poll() is None, daemon.log()
        answers = watch.answers
        print(
            f"open files {OPEN_FILES}: descriptors {baseline_fds} before, peak "
            f"{watch.peak_fds} under {IDLE} idle connections; /healthz {len(answers)} answers, "
            f"slowest {max(t for _, t in answers):.3f} s; log {quiet_bytes} bytes in "
            f"{WINDOW_S:g} s quiet, {attack_bytes} bytes in {attack_s:.1f} s of attack "
            f"({IDLE} connections made in {connected_s:.1f} s); "
            f"slow client: {slow}"
        )
        assert len(answers) >= 10
        assert [a for a in answers if a[0] != 200 or a[1] >= 1.0] == []
        # The same length of time, give or take the connections' making: one line of
        # asyncio's (2 KiB with its traceback) at most.
        assert attack_bytes <= quiet_bytes * attack_s / WINDOW_S + 2048, daemon.log()[-3000:]
        assert watch.peak_fds < OPEN_FILES
        assert slow == ["closed by the server"]
        code, took = daemon.terminate()
        assert code == 0
        assert took < 10.0
    finally:
        for sock in idle:
            sock.close()
        daemon.kill()
        inverter.stop()
