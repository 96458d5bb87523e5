"""systemd integration: sd_notify datagrams, the progress-gated watchdog, logs, the unit file."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heliod.daemon.boot.logs import REDACTED, setup_logging
from heliod.daemon.boot.systemd import Notifier, Watchdog, starting, watchdog_interval_s
from tests.e2e.harness import Daemon, write_config
from tests.support import ROOT, free_port, require_binary

UNIT = ROOT / "systemd" / "heliod.service"


class NotifySocket:
    """The test's own NOTIFY_SOCKET: a datagram socket collecting what the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.received: list[tuple[float, str]] = []

    def collect(self, seconds: float) -> list[str]:
        """Datagrams received during `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data))
            got.append(data)
        return got

    def wait_for(self, line: str, timeout: float) -> None:
        """Collect until a datagram has `line`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line in d.splitlines() for d in self.collect(0.2)):
                return
        raise AssertionError(f"no {line} within {timeout} s; got {self.received}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_notifier_sends_one_datagram_to_a_path_and_to_an_abstract_socket(
    notify_socket: NotifySocket,
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    assert notifier.ready("serving")
    assert notify_socket.collect(0.3) == ["READY=1\nSTATUS=serving"]
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"heliod-test-{os.getpid()}"
    abstract.bind("\0" + name)
    abstract.settimeout(2)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert abstract.recv(100) == b"WATCHDOG=1"
    finally:
        abstract.close()
    assert not Notifier({}).ready()  # not under systemd: nothing sent, no error


def test_watchdog_interval_is_for_this_process_only() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval_s(mine) == 2.0
    assert watchdog_interval_s({}) is None


def test_watchdog_is_due_only_while_heartbeat_and_commits_advance() -> None:
    now = [100.0]
    dog = Watchdog(window_s=5.0, clock=lambda: now[0])
    assert dog.due()
    now[0] += 4
    dog.mark("heartbeat")
    now[0] += 2  # commits 6 s old: the store stopped committing
    assert dog.stalled() == ["commit"]
    dog.mark("commit")
    assert dog.due()
    now[0] += 6  # nothing at all: a wedged scheduler
    assert dog.stalled() == ["heartbeat", "commit"]
    with pytest.raises(ValueError, match="unknown progress kind"):
        dog.mark("timer")


def _pings(datagrams: list[str]) -> int:
    return sum("WATCHDOG=1" in d.splitlines() for d in datagrams)


def test_daemon_notifies_ready_pings_while_it_commits_and_stops_when_the_store_hangs(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    api_port = free_port()
    # A device that never answers: the watchdog must not care about devices.
    config = write_config(tmp_path, api_port=api_port, modbus_port=free_port())
    env = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "2000000"}
    daemon = Daemon(config, api_port, env=env)
    try:
        notify_socket.wait_for("READY=1", timeout=20)
        assert _pings(notify_socket.collect(3.0)) >= 3  # pings every WatchdogSec/4
        # Another writer holds the store: nothing commits, so the pings stop.
        db = sqlite3.connect(tmp_path / "state" / "heliod.db", isolation_level=None, timeout=30)
        db.execute("BEGIN IMMEDIATE")
        try:
            notify_socket.collect(1.5)  # the window (WatchdogSec/2) runs out
            assert _pings(notify_socket.collect(2.0)) == 0
        finally:
            db.execute("ROLLBACK")
            db.close()
        notify_socket.wait_for("WATCHDOG=1", timeout=5)  # committing again: pings resume
        code, took = daemon.terminate()
        assert code == 0
        assert took < 10
        notify_socket.collect(0.3)
        assert any("STOPPING=1" in d for _, d in notify_socket.received)
        assert "no progress (commit)" in daemon.log()
    finally:
        daemon.kill()


def test_journald_format_has_priorities_and_no_timestamps_and_hides_secrets() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging(
            "info", stream=out, environ={"JOURNAL_STREAM": "8:1234"}, secrets=["s3cr3t-token"]
        )
        log = logging.getLogger("heliod.test")
        log.info("plain")
        log.warning("token is %s", "s3cr3t-token")
        try:
            raise RuntimeError("boom with s3cr3t-token")
        except RuntimeError:
            log.exception("failed")
        log.debug("hidden at info")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = out.getvalue().splitlines()
    assert lines[0] == "<6>heliod.test: plain"
    assert lines[1] == f"<4>heliod.test: token is {REDACTED}"
    assert lines[2] == "<3>heliod.test: failed"
    assert all(line.startswith("<3>") for line in lines[2:])  # every traceback line
    assert "s3cr3t-token" not in out.getvalue()
    assert not any(re.match(r"<\d>\d{4}-\d\d-\d\d", line) for line in lines)


def test_plain_format_outside_systemd_has_timestamps() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("info", stream=out, environ={})
        logging.getLogger("heliod.test").info("hello")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO heliod.test: hello\n", out.getvalue()
    )


def test_unit_file_hardening_scores_at_most_1_5() -> None:
    analyze = require_binary("systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for heliod.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 1.5, result.stdout
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "DynamicUser=yes",
        "StateDirectory=heliod",
        "LimitNOFILE=1024",
    ):
        assert line in text


def test_rtu_drop_in_allows_the_serial_port() -> None:
    text = (ROOT / "systemd" / "heliod-rtu.conf").read_text()
    assert re.search(r"^DeviceAllow=/dev/\S+ rw$", text, re.M)
    assert re.search(r"^SupplementaryGroups=dialout$", text, re.M)


def test_a_long_store_opening_extends_the_start_timeout_and_says_so(
    notify_socket: NotifySocket,
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    with starting("opening the store", notifier=notifier, every_s=0.1):
        got = notify_socket.collect(0.45)
    assert got[0] == "STATUS=opening the store"
    extensions = [d for d in got if d.startswith("EXTEND_TIMEOUT_USEC=")]
    assert len(extensions) >= 3
    assert set(extensions) == {"EXTEND_TIMEOUT_USEC=300000"}  # three periods from now
    assert notify_socket.collect(0.3) == []  # the block ended: no more extensions


def test_start_timeout_extensions_stop_at_the_limit(notify_socket: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    with starting("opening the store", notifier=notifier, every_s=0.05, limit_s=0.2):
        early = notify_socket.collect(0.5)
        late = notify_socket.collect(0.3)  # past the limit: a hung opening must time out
    assert 2 <= sum(d.startswith("EXTEND_TIMEOUT_USEC=") for d in early) <= 6
    assert late == []
    with starting("not under systemd", notifier=Notifier({})):
        pass  # nothing to send, nothing fails
