"""Pushing mint events to a real HTTP platform of the test's own, through every fault of docs/platform.md."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from heliod.adapters.platform import PlatformClient, PlatformSettings, retry_after, signature
from heliod.adapters.store import schema as t
from heliod.adapters.store.deliveries import Head, heads
from heliod.daemon.boot.settings import log_signer, platform_parts
from heliod.daemon.cli.commands.platform import render_status
from heliod.daemon.config import ConfigError
from heliod.daemon.jobs.push import Pusher, PushWorkers, backoff_s, sync_retry
from heliod.daemon.jobs.streak import Streak
from heliod.daemon.read.deliveries import sync_counts, sync_status
from heliod.rewards.tlog.verify import open_note, parse_checkpoint, parse_vkey
from tests.daemon.ledger_fixture import SECRET, Ledger, make_ledger
from tests.daemon.platform_server import Platform, verify
from tests.support import ROOT


@pytest.fixture
def platform() -> Iterator[Platform]:
    """The platform, listening."""
    server = Platform(SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def ledger(tmp_path: Path, platform: Platform) -> Iterator[Ledger]:
    """Four MWh of alpha and three of beta, committed, none delivered."""
    book = make_ledger(tmp_path, push_url=platform.url)
    book.produce("alpha", 4)
    book.produce("beta", 3)
    yield book
    book.store.close()


def stored(ledger: Ledger) -> dict[str, bytes]:
    """The push body of every mint, as committed."""
    m = t.mints.c
    with ledger.store.read() as conn:
        return {
            f"{p}:{k}": e.encode()
            for p, k, e in conn.execute(select(m.plant, m.mwh_index, m.event))
        }


def pusher(ledger: Ledger, platform: Platform, **options: float) -> Pusher:
    """A Pusher with a real HTTP client to the platform (fast backoff unless told)."""
    timeout = options.pop("timeout_s", 1.0)  # whole requests: room for a loaded machine
    client = PlatformClient(PlatformSettings(platform.url, SECRET, timeout_s=timeout))
    settings = {"max_interval_s": 0.3, "first_delay_s": 0.02, **options}
    return Pusher(ledger.store, client, rng=random.Random(7), **settings)


def run_until(p: Pusher, done: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Run the delivery loop in a thread until `done()`, or fail after `timeout_s`."""
    stop = threading.Event()
    thread = threading.Thread(target=p.run, args=(stop, 0.02), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not done():
            assert time.monotonic() < deadline, "delivery did not finish in time"
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)


def assert_delivered_in_order(ledger: Ledger, platform: Platform) -> None:
    """Every mint acknowledged once or more, every copy identical and signed, in order."""
    bodies = stored(ledger)
    assert platform.events == bodies
    for r in platform.received:
        assert r.signed
        assert r.body == bodies[r.key]  # duplicates are byte-for-byte the committed body
    for plant in ("alpha", "beta"):
        seq = [int(k.split(":")[1]) for k in platform.arrivals() if k.startswith(f"{plant}:")]
        assert seq == sorted(seq), seq  # k + 1 never before k is settled
    assert sync_counts(ledger.store) == {"pending": 0, "rejected": 0}


def all_done(ledger: Ledger) -> Callable[[], bool]:
    """True once nothing is pending."""
    return lambda: sync_counts(ledger.store)["pending"] == 0


def test_each_push_is_signed_keyed_and_the_committed_bytes(
    ledger: Ledger, platform: Platform
) -> None:
    p = pusher(ledger, platform)
    assert p.deliver_due() == 7
    assert_delivered_in_order(ledger, platform)
    # One attempt per plant per pass: the plants interleave, each in its own order.
    assert platform.arrivals() == [
        *("alpha:1", "beta:1", "alpha:2", "beta:2", "alpha:3", "beta:3", "alpha:4")
    ]
    body = stored(ledger)["beta:2"]
    # The body is docs/platform.md's, fixed at commit: the platform can parse it as is.
    assert body.startswith(b'{"event":"mint","id":"beta:2","plant":"beta","mwh_index":2,')
    assert b'"units":250,' in body and b'"undistributed_units":' in body
    # A signature covers time and body: another body or an old time fails verification.
    now = int(time.time())
    header = signature(SECRET, body, now)
    assert verify(SECRET, header, body, now)
    assert not verify(SECRET, header, body.replace(b"250", b"251"), now)
    assert not verify(SECRET, signature(SECRET, body, now - 3600), body, now)
    assert not verify("another-secret", header, body, now)
    status = sync_status(ledger.store)
    assert (status["delivered"], status["pending"], status["rejected"]) == (7, 0, 0)
    assert p.deliver_due() == 0  # nothing sent twice once acknowledged
    assert len(platform.received) == 7
    # Each body carries the plant's signed checkpoint of size k (docs/verification.md):
    # the platform checks it with the plant's verifier key and keeps it.
    signer = log_signer(ledger.config, create=False)
    for r in platform.received:
        event = json.loads(r.body)
        name, key = parse_vkey(signer.vkey(event["plant"]))
        assert event["log"]["leaf_index"] == event["mwh_index"] - 1
        text = open_note(event["log"]["checkpoint"], name, key)
        assert parse_checkpoint(text)[:2] == (f"heliod/{event['plant']}", event["mwh_index"])


def test_faults_are_retried_until_acknowledged(ledger: Ledger, platform: Platform) -> None:
    faults = ["503", "429", "timeout", "drop", "500", "ok", "drop", "301", "timeout", "409"]
    platform.faults.extend(faults)
    run_until(pusher(ledger, platform), all_done(ledger))
    assert_delivered_in_order(ledger, platform)
    answers = [r.answer for r in platform.received]
    assert answers[: len(faults)] == faults
    with ledger.store.read() as conn:
        rows = {f"{r.plant}:{r.mwh_index}": r for r in conn.execute(select(t.deliveries))}
    assert {r.status for r in rows.values()} == {"delivered"}
    assert sum(r.attempts for r in rows.values()) == len(platform.received)
    # A resend after a timeout or a cut connection is the same event: the platform keeps one.
    assert len(platform.received) > len(platform.events) == 7


def test_a_rejected_event_is_parked_and_the_next_goes_on(
    db_url: str, tmp_path: Path, platform: Platform
) -> None:
    ledger = make_ledger(tmp_path, db_url, push_url=platform.url)  # SQLite and PostgreSQL
    ledger.produce("alpha", 4)
    ledger.produce("beta", 3)
    platform.reject.add("alpha:2")
    run_until(pusher(ledger, platform), all_done(ledger))
    assert [k for k in platform.arrivals() if k.startswith("alpha")] == [
        "alpha:1",
        "alpha:2",
        "alpha:3",
        "alpha:4",
    ]
    status = sync_status(ledger.store)
    assert (status["delivered"], status["pending"], status["rejected"]) == (6, 0, 1)
    [parked] = status["rejected_events"]
    assert parked["id"] == "alpha:2"
    assert parked["last_status"] == 422
    assert "unknown plant for this account" in parked["last_error"]
    assert "alpha:2" in render_status(status)
    assert sync_counts(ledger.store) == {"pending": 0, "rejected": 1}
    with pytest.raises(ValueError, match="PLANT:K"):
        sync_retry(ledger.store, "alpha-2")
    with pytest.raises(LookupError):
        sync_retry(ledger.store, "alpha:99")
    assert sync_retry(ledger.store, "alpha:3") == 0  # delivered: nothing to re-queue
    platform.reject.clear()
    assert sync_retry(ledger.store, "alpha:2") == 1
    assert sync_counts(ledger.store) == {"pending": 1, "rejected": 0}
    run_until(pusher(ledger, platform), all_done(ledger))
    assert platform.arrivals()[-1] == "alpha:2"
    assert platform.events == stored(ledger)
    assert sync_retry(ledger.store) == 0
    ledger.store.close()


def test_a_long_outage_then_back(ledger: Ledger, platform: Platform) -> None:
    platform.stop()
    p = pusher(ledger, platform, max_interval_s=0.4)
    stop = threading.Event()
    thread = threading.Thread(target=p.run, args=(stop, 0.02), daemon=True)
    thread.start()
    time.sleep(3.0)
    with ledger.store.read() as conn:
        heads = conn.execute(select(t.deliveries).where(t.deliveries.c.status == "pending")).all()
    # Only each plant's first event is tried while the platform is down.
    assert sorted((r.plant, r.mwh_index) for r in heads) == [("alpha", 1), ("beta", 1)]
    for row in heads:
        assert row.attempts >= 5  # 0.02 s doubling, capped at 0.4 s, for 3 s
        assert row.last_status is None
        assert "ConnectError" in row.last_error
        assert row.next_attempt_us <= time.time_ns() // 1000 + 400_000  # never beyond the cap
    status = sync_status(ledger.store)
    assert status["plants"]["alpha"]["next"]["attempts"] >= 5
    assert "ConnectError" in render_status(status)
    platform.start()
    deadline = time.monotonic() + 15
    while sync_counts(ledger.store)["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    assert_delivered_in_order(ledger, platform)


def test_the_backoff_wait_survives_a_restart(ledger: Ledger, platform: Platform) -> None:
    now = [time.time_ns() // 1000]
    platform.faults.extend(["503", "503"])
    first = pusher(ledger, platform, max_interval_s=600, first_delay_s=1.0, clock_us=lambda: now[0])
    first.deliver_due()
    assert platform.arrivals() == ["alpha:1", "beta:1"]  # one attempt each, both 503
    due = first.next_due_us()
    assert due is not None
    assert now[0] <= due <= now[0] + 1_000_000  # uniform in [0, 1 s] after one failure
    # A "restarted" daemon: a new Pusher over the same store honours the stored wait.
    again = pusher(ledger, platform, max_interval_s=600, clock_us=lambda: now[0])
    now[0] = due - 1
    assert again.deliver_due() == 0
    assert len(platform.received) == 2
    now[0] = 10**18  # far later: everything is due
    assert again.deliver_due() == 7
    assert_delivered_in_order(ledger, platform)


def test_full_jitter_backoff() -> None:
    rng = random.Random(1)
    for n in range(1, 40):
        ceiling = min(600.0, 2.0 ** (n - 1))
        waits = [backoff_s(n, 600.0, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert min(waits) < ceiling * 0.1 and max(waits) > ceiling * 0.9  # spread over [0, c]
    assert max(backoff_s(10_000, 600.0, rng) for _ in range(100)) <= 600.0  # forever, capped


def test_retry_after_and_settings() -> None:
    assert retry_after("7", 1000.0) == 7.0
    assert retry_after("Thu, 01 Jan 1970 00:20:00 GMT", 1000.0) == 200.0
    assert retry_after("Thu, 01 Jan 1970 00:00:00 GMT", 1000.0) == 0.0
    assert retry_after("soon", 1000.0) is None
    assert retry_after(None, 1000.0) is None


def test_platform_settings_need_a_secret(tmp_path: Path, platform: Platform) -> None:
    ledger = make_ledger(tmp_path, push_url=platform.url, backers_url=platform.backers_url)
    parts = platform_parts(ledger.config)
    assert parts is not None
    assert parts.link == PlatformSettings(platform.url, SECRET, platform.backers_url, 0.5)
    (ledger.path / "platform.secret").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"platform\.secret_file: required"):
        platform_parts(ledger.config)
    ledger.store.close()
    (tmp_path / "none").mkdir()
    bare = make_ledger(tmp_path / "none")
    assert platform_parts(bare.config) is None
    bare.store.close()


@pytest.mark.slow
def test_nothing_is_lost_across_sigkill_mid_delivery(ledger: Ledger, platform: Platform) -> None:
    platform.slow_s = 0.15  # each answer takes a while: kills land mid-request
    received = threading.Event()
    platform.on_receive = lambda _key: received.set()
    url = ledger.store.url
    command = [sys.executable, "-m", "tests.daemon.jobs.push_child", url, platform.url]
    command.append(str(ledger.path / "platform.secret"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0

    def start() -> subprocess.Popen[str]:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        return child

    for round_ in range(6):
        if sync_counts(ledger.store)["pending"] == 0:
            break
        received.clear()
        child = start()
        assert received.wait(20), "the child sent nothing"
        if round_ % 2:
            time.sleep(platform.slow_s + 0.01)  # just after the answer: before or after commit
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        kills += 1
    child = start()
    deadline = time.monotonic() + 30
    while sync_counts(ledger.store)["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    child.terminate()
    assert child.wait(10) == 0
    assert kills >= 4
    assert_delivered_in_order(ledger, platform)
    # A kill while the platform held the request: it had the event, heliod resent it.
    assert len(platform.received) > len(platform.events) == 7


def test_failures_in_a_row_are_counted_for_health_and_end_with_a_delivery(
    ledger: Ledger, platform: Platform
) -> None:
    # /healthz calls the push job `failing` after 3 failures in a row (docs/operations.md).
    platform.faults.extend(["503", "503", "timeout"])
    p = pusher(ledger, platform)
    [head] = [h for h in _heads(ledger) if h.id == "alpha:1"]
    for _ in range(3):
        assert p.attempt(head) == 0
        [head] = [h for h in _heads(ledger) if h.id == "alpha:1"]
    view = p.streak.view()
    assert view["failures"] == 3
    assert view["last_error"].startswith("push alpha:1: ")
    assert p.attempt(head) == 1  # acknowledged
    assert p.streak.view()["failures"] == 0


def _heads(ledger: Ledger) -> list[Head]:
    with ledger.store.read() as conn:
        return heads(conn, due_by_us=2**62)


def test_each_push_worker_has_its_own_failures_in_a_row(ledger: Ledger, platform: Platform) -> None:
    # One plant's failures never count toward, nor are ended by, another's deliveries.
    def make(wants: Callable[[str], bool], streak: Streak) -> Pusher:
        client = PlatformClient(PlatformSettings(platform.url, SECRET, timeout_s=1.0))
        return Pusher(
            ledger.store, client, max_interval_s=0.3, first_delay_s=0.02, wants=wants, streak=streak
        )

    workers = PushWorkers(["alpha", "beta"], make)
    alpha, beta, _others = workers.pushers
    platform.faults.extend(["503", "503"])
    for _ in range(2):
        [head] = [h for h in _heads(ledger) if h.id == "alpha:1"]
        assert alpha.attempt(head) == 0
    platform.faults.append("503")
    [head] = [h for h in _heads(ledger) if h.id == "beta:1"]
    assert beta.attempt(head) == 0  # beta's first failure: not alpha's third
    assert workers.streaks.view()["failures"] == 2
    assert beta.attempt(next(h for h in _heads(ledger) if h.id == "beta:1")) == 1
    # beta's delivery does not end alpha's streak.
    view = workers.streaks.view()
    assert view["failures"] == 2
    assert view["last_error"].startswith("push alpha:1: ")
    platform.faults.append("timeout")
    assert alpha.attempt(next(h for h in _heads(ledger) if h.id == "alpha:1")) == 0
    assert workers.streaks.view()["failures"] == 3  # alpha is failing
    assert workers.streaks.of("beta").view()["failures"] == 0
