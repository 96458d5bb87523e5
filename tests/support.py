"""Shared helpers for tests that start real services on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("HELIOD_REQUIRE_SERVICES") == "1"


ROOT = Path(__file__).resolve().parent.parent  # the repository


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until a TCP connect to host:port succeeds, or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on {host}:{port} after {timeout}s")


def require_binary(name: str) -> str:
    """Path of a needed executable; skip without it, fail under HELIOD_REQUIRE_SERVICES=1."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        message = f"{name} is not installed (scripts/test.sh installs it)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return path


def unavailable(message: str) -> None:
    """Skip because a service is missing, or fail when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "4m") mounted at `folder` for the test, unmounted after.

    Mounting needs root (CI and the test containers run as root): elsewhere the test is
    skipped saying so, and fails under HELIOD_REQUIRE_SERVICES=1 like a missing service.
    """
    if os.geteuid() != 0:
        unavailable("mounting a small tmpfs (a disk that fills up) needs root")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs at {folder}: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], capture_output=True, check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the file system of `folder` with one file until `leave` bytes are left free."""
    filler = folder / "filler"
    with filler.open("ab") as out:
        while True:
            free = shutil.disk_usage(folder).free
            chunk = min(free - leave, 1 << 20)
            if chunk <= 0:
                return filler
            try:
                out.write(b"\0" * chunk)
                out.flush()
            except OSError:  # ENOSPC: full
                return filler
