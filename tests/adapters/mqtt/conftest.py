"""Fixtures: a real Mosquitto per test, a recording sink, test certificates."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from heliod.rewards.readings import Reading
from tests.adapters.mqtt.broker import Broker, Certs, make_certs
from tests.support import require_binary


@pytest.fixture(scope="session")
def mosquitto_bin() -> str:
    """Path of the mosquitto binary (skips, or fails under CI, without it)."""
    return require_binary("mosquitto")


@pytest.fixture
def broker(mosquitto_bin: str, tmp_path: Path) -> Iterator[Broker]:
    """A running plain-TCP broker with persistence, stopped after the test."""
    b = Broker(mosquitto_bin, tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A test CA with server and client certificates, made once per session."""
    require_binary("openssl")
    return make_certs(tmp_path_factory.mktemp("certs"))


class RecordingSink:
    """A sink that keeps every batch it is handed, in order (the store's stand-in)."""

    def __init__(self) -> None:
        self.batches: list[list[Reading]] = []
        self._cond = threading.Condition()

    def __call__(self, readings: list[Reading]) -> None:
        with self._cond:
            self.batches.append(list(readings))
            self._cond.notify_all()

    @property
    def readings(self) -> list[Reading]:
        """Every reading received, in order."""
        with self._cond:
            return [r for batch in self.batches for r in batch]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Reading]:
        """Wait until at least `count` readings arrived; return them all."""
        return self.wait_until(lambda rs: len(rs) >= count, timeout)

    def wait_until(
        self, done: Callable[[list[Reading]], bool], timeout: float = 15.0
    ) -> list[Reading]:
        """Wait until done(readings) is true (or the timeout); return the readings."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done([r for b in self.batches for r in b]):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        return self.readings


@pytest.fixture
def sink() -> RecordingSink:
    """A fresh recording sink."""
    return RecordingSink()
