"""The API over a real store filled by the real accountant (see tests/daemon/ledger_fixture.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter

from heliod.daemon.boot.settings import http_settings
from heliod.daemon.http.api import create_app
from heliod.daemon.read.deliveries import sync_counts
from tests.daemon.ledger_fixture import TOKEN, Ledger, make_ledger
from tests.support import free_port, wait_port

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Provider:
    """A health provider whose device states the test sets; sync counts come from the store."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.devices: dict[str, dict[str, Any]] = {
            "inv1": {"state": "ok", "last_reading_at": "2024-03-01T01:00:00Z"},
            "inv2": {"state": "ok", "last_reading_at": None},
        }
        self.export_pending = 0

    def __call__(self) -> Mapping[str, Any]:
        return {
            "devices": self.devices,
            "sync": sync_counts(self.ledger.store),
            "export": {"pending": self.export_pending},
        }


def build_app(ledger: Ledger, provider: Provider | None = None) -> FastAPI:
    """The daemon's app over the ledger, with a registry holding one known metric."""
    registry = CollectorRegistry()
    Counter("heliod_test_requests", "a metric the test can find", registry=registry).inc()
    return create_app(
        ledger.store, http_settings(ledger.config), provider or Provider(ledger), registry
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """Three MWh of alpha, two of beta, and alpha's two anomalies."""
    book = make_ledger(tmp_path)
    book.produce("alpha", 3)
    book.produce("beta", 2)
    book.anomalies("alpha")
    yield book
    book.store.close()


@pytest.fixture
def client(ledger: Ledger) -> Iterator[TestClient]:
    """An in-process client of the app (no token set)."""
    with TestClient(build_app(ledger)) as c:
        yield c


@contextmanager
def serve(app: FastAPI, **options: Any) -> Iterator[str]:
    """Run `app` with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    settings = {"log_level": "warning", "lifespan": "off", **options}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port("127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
