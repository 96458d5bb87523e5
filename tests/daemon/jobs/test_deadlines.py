"""Every platform request has an overall deadline, a stop abandons it, and a stuck plant
delays no other (docs/platform.md, "Deadlines"), against a platform that answers one byte
every 2 s."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from heliod.adapters.platform import PlatformClient, PlatformSettings, Stopping, Unavailable
from tests.daemon.ledger_fixture import SECRET, Ledger, make_ledger
from tests.daemon.trickle import Trickle, elapsed
from tests.support import free_port


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    """A platform trickling every answer."""
    server = Trickle().start()
    yield server
    server.stop()


def client(server: Trickle, timeout_s: float) -> PlatformClient:
    """A real client of the trickling platform."""
    return PlatformClient(
        PlatformSettings(
            f"{server.url}/events",
            SECRET,
            backers_url=f"{server.url}/b/{{plant}}",
            timeout_s=timeout_s,
        )
    )


def in_thread(
    call: Callable[[], object],
) -> tuple[threading.Thread, list[tuple[float, BaseException | None]]]:
    """Run `call` on a thread (today's code would block the test for minutes)."""
    outcome: list[tuple[float, BaseException | None]] = []
    thread = threading.Thread(target=lambda: outcome.append(elapsed(call)), daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("request_kind", ["register", "push"])
def test_a_trickling_answer_ends_at_the_deadline(trickle: Trickle, request_kind: str) -> None:
    # httpx's timeout (3 s) bounds each read; a byte every 2 s never trips it.
    link = client(trickle, timeout_s=3.0)
    if request_kind == "register":
        thread, outcome = in_thread(lambda: link.fetch_backers("alpha"))
    else:
        thread, outcome = in_thread(lambda: link.push("alpha:1", b"{}"))
    thread.join(15.0)
    assert not thread.is_alive(), "the request outlived its deadline by far"
    [(seconds, error)] = outcome
    assert isinstance(error, Unavailable)
    assert "no complete answer within 3 s" in str(error)
    assert 2.9 <= seconds < 6.0
    link.close()


def test_close_abandons_the_request_in_flight(trickle: Trickle) -> None:
    link = client(trickle, timeout_s=60.0)
    thread, outcome = in_thread(lambda: link.fetch_backers("alpha"))
    deadline = time.monotonic() + 10
    while trickle.trickling == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    link.close()  # from another thread, as the runtime does on SIGTERM
    thread.join(5.0)
    assert time.monotonic() - started < 1.0
    [(_, error)] = outcome
    assert isinstance(error, Stopping)
    with pytest.raises(Stopping):  # a closed client sends nothing more
        link.push("alpha:1", b"{}")


def _config(ledger: Ledger, api_port: int) -> Path:
    """The ledger's configuration for `heliod run`: its store, a free port, a 60 s timeout."""
    text = (ledger.path / "heliod.toml").read_text()
    text = text.replace("[api]\n", f'[api]\nlisten = "127.0.0.1:{api_port}"\n', 1)
    text = text.replace('timeout = "500ms"', 'timeout = "60s"')
    storage = f'[storage]\nurl = "sqlite:///{ledger.path / "heliod.db"}"\n'
    path = ledger.path / "run.toml"
    path.write_text(storage + text)
    return path


def test_a_stuck_plant_delays_no_other_and_sigterm_still_exits_in_time(tmp_path: Path) -> None:
    # alpha's pushes and every register pull trickle (a deadline of 60 s, so only the
    # worker per plant and the stop can be what keeps things moving); beta's are answered.
    server = Trickle(trickles=lambda path, key: not key.startswith("beta:")).start()
    ledger = make_ledger(
        tmp_path, push_url=f"{server.url}/events", backers_url=f"{server.url}/b/{{plant}}"
    )
    ledger.produce("alpha", 2)
    ledger.produce("beta", 2)
    ledger.store.close()
    config = _config(ledger, free_port())
    log = (tmp_path / "heliod.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "heliod.daemon.cli.main", "-c", str(config), "run"],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while ("/events", "beta:2") not in server.requests:
            assert proc.poll() is None, (tmp_path / "heliod.log").read_text()
            assert time.monotonic() < deadline, (
                server.requests,
                (tmp_path / "heliod.log").read_text(),
            )
            time.sleep(0.1)
        # beta:2 is sent only once beta:1 was acknowledged: beta went on while alpha hung.
        assert ("/events", "alpha:1") in server.requests
        assert ("/events", "alpha:2") not in server.requests  # alpha waits for its first
        wait_for = time.monotonic() + 10
        while not any(path.startswith("/b/") for path, _ in server.requests):
            assert time.monotonic() < wait_for  # a register pull is in flight too
            time.sleep(0.1)
        assert server.trickling >= 2
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
        log.close()
    text = (tmp_path / "heliod.log").read_text()
    print(f"SIGTERM with a push and a register pull trickling: exit {code} in {took:.2f} s")
    assert code == 0, text
    assert took < 10.0, (took, text)
    assert "stopped cleanly" in text
    assert "Traceback" not in text
