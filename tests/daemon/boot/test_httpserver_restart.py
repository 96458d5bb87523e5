"""The HTTP server in its thread: a start that fails gives its port back for the next one."""

from __future__ import annotations

import json
import urllib.request

import pytest
from fastapi import FastAPI

from heliod.daemon.boot.httpserver import HttpServer
from tests.support import free_port


def app() -> FastAPI:
    api = FastAPI()

    @api.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return api


def test_a_start_that_times_out_releases_the_port_for_the_retry() -> None:
    port = free_port()
    # Not started within 0 s: the supervisor will start a fresh one later. The port
    # must be free again by then, or every restart fails with "Address already in use".
    # (A server quick enough to be up before the first look is stopped and tried again.)
    for _ in range(50):
        server = HttpServer(app(), "127.0.0.1", port)
        try:
            server.start(timeout_s=0)
        except RuntimeError as exc:
            failure = str(exc)
            break
        server.stop()
    else:
        pytest.fail("the server always started within 0 s")
    assert "did not start" in failure
    assert not server.alive()
    again = HttpServer(app(), "127.0.0.1", port)
    again.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as answer:
            assert json.loads(answer.read()) == {"pong": "yes"}
    finally:
        again.stop()
