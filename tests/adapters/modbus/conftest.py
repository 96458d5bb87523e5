"""Fixtures for the Modbus tests: fake servers that share one session-wide request log."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest

from tests.adapters.modbus.fakes import FakeServer, FakeUnit, RequestLog


@pytest.fixture(scope="session")
def request_log() -> Iterator[RequestLog]:
    """Every request any fake server received during the session.

    heliod never writes: at the end of the session no function code other than 1-4 may
    have reached a server, whatever the tests did (polls, scans, faults, restarts).
    """
    log = RequestLog()
    yield log
    assert log.total() > 0, "no fake server received any request: the check would be vacuous"
    assert log.non_read_codes() == {}, "function codes other than 1-4 reached a device"


@pytest.fixture
def serve(request_log: RequestLog) -> Iterator[Callable[..., FakeServer]]:
    """Start fake servers for the test; all are stopped at its end."""
    started: list[FakeServer] = []

    def start(units: Mapping[int, FakeUnit], **kwargs: object) -> FakeServer:
        server = FakeServer(units, request_log, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
