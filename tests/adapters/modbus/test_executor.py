"""LinkExecutor: serial per link, shared workers, slow links moved to their own thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from heliod.adapters.modbus.executor import LinkExecutor


@pytest.fixture
def executor() -> Iterator[LinkExecutor]:
    ex = LinkExecutor(workers=1, slow_s=0.2, recover_after=2)
    ex.start()
    yield ex
    ex.shutdown(2)


def recorder(log: list[str], name: str, seconds: float = 0.0) -> Callable[[], None]:
    def task() -> None:
        log.append(f"{name}+")
        time.sleep(seconds)
        log.append(f"{name}-")

    return task


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_tasks_of_one_link_run_one_at_a_time_in_order(executor: LinkExecutor) -> None:
    log: list[str] = []
    for name in "abc":
        assert executor.submit("gw", name, recorder(log, name, 0.02))
    wait_for(lambda: len(log) == 6)
    assert log == ["a+", "a-", "b+", "b-", "c+", "c-"]


def test_a_task_still_pending_is_skipped(executor: LinkExecutor) -> None:
    gate = threading.Event()
    assert executor.submit("gw", "dev", gate.wait)
    assert not executor.submit("gw", "dev", gate.wait)  # previous poll not finished
    gate.set()
    wait_for(lambda: executor.submit("gw", "dev", lambda: None))


def test_a_stuck_link_never_blocks_the_others(executor: LinkExecutor) -> None:
    release = threading.Event()
    done: list[str] = []
    executor.submit("dead", "dead", release.wait)  # takes the only shared worker
    time.sleep(0.05)
    started = time.monotonic()
    executor.submit("alive", "alive", lambda: done.append("alive"))
    while not done:
        executor.watch()  # the poller calls this every WATCH_S
        time.sleep(0.02)
    assert time.monotonic() - started < 1.0  # slow_s 0.2 + detection, not the dead task's end
    # The pool grew for the waiting link; the stuck worker is retired once past slow_s.
    wait_for(lambda: executor.watch() or executor.retired == 1)
    # From now on the dead link has its own thread: the pool stays free.
    done.clear()
    executor.submit("dead", "dead-2", release.wait)
    executor.submit("alive", "alive", lambda: done.append("alive"))
    wait_for(lambda: done == ["alive"], timeout_s=0.5)
    release.set()


def test_links_queued_behind_busy_workers_get_no_thread_until_the_pool_is_blocked() -> None:
    now = [100.0]
    ex = LinkExecutor(workers=2, slow_s=0.5, monotonic=lambda: now[0])
    ex.start()
    gate = threading.Event()
    started: list[int] = []

    def poll(i: int) -> Callable[[], None]:
        def task() -> None:
            started.append(i)
            gate.wait()

        return task

    def pool_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("modbus-pool-"))

    try:
        for i in range(20):  # a poll tick: every link queued at once
            ex.submit(f"link{i}", f"dev{i}", poll(i))
        wait_for(lambda: len(started) == 2)
        now[0] += 0.2  # both workers on one task for less than slow_s / 2: getting through
        ex.watch()
        assert pool_threads() == 2  # a thread per waiting link cost 2.8x the polls
        now[0] += 0.05  # both held for slow_s / 2: every waiting link gets a worker
        ex.watch()
        wait_for(lambda: len(started) == 20)
        assert pool_threads() == 20
        assert ex.retired == 0  # not slow yet: they keep their shared workers
        now[0] += 0.25  # the first two now past slow_s: moved to their own threads
        ex.watch()
        assert ex.retired == 2
    finally:
        gate.set()
        ex.shutdown(2)


def test_links_waiting_long_behind_a_busy_worker_add_one_worker_at_a_time() -> None:
    now = [100.0]
    ex = LinkExecutor(workers=1, slow_s=0.5, idle_s=0.3, monotonic=lambda: now[0])
    ex.start()
    gates = [threading.Event() for _ in range(20)]
    started: list[int] = []

    def poll(i: int) -> Callable[[], None]:
        def task() -> None:
            started.append(i)
            gates[i].wait()

        return task

    def pool_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("modbus-pool-"))

    try:
        for i in range(20):  # a tick of devices that each answer in tens of milliseconds
            ex.submit(f"link{i}", f"dev{i}", poll(i))
        wait_for(lambda: started == [0])
        for i in range(2):  # the worker getting through: a new poll every 0.2 s
            now[0] += 0.2
            ex.watch()
            assert pool_threads() == 1  # waited less than slow_s: no other worker
            gates[i].set()
            wait_for(lambda n=i + 2: len(started) == n)
        now[0] += 0.1  # the worker on a poll for 0.1 s, the links behind it queued 0.5 s ago
        ex.watch()
        assert pool_threads() == 2  # one more worker, not one per waiting link
        wait_for(lambda: len(started) == 4)
        ex.watch()
        assert pool_threads() == 3
        for gate in gates:
            gate.set()
        wait_for(lambda: len(started) == 20)
        assert pool_threads() == 3  # kept while there is work: the next tick needs them too
        wait_for(lambda: pool_threads() == 1)  # idle for idle_s: back to one worker
        ex.watch()
        assert pool_threads() == 1  # nothing waits any more
    finally:
        for gate in gates:
            gate.set()
        ex.shutdown(2)


def test_a_slow_link_gets_a_thread_then_returns_to_the_pool(executor: LinkExecutor) -> None:
    log: list[str] = []
    executor.submit("gw", "slow", recorder(log, "s", 0.25))
    wait_for(lambda: log == ["s+", "s-"])
    names = {t.name for t in threading.enumerate()}
    assert any(n.startswith("modbus-link-") for n in names)
    for i in range(2):  # recover_after = 2 quick tasks in a row
        log.clear()
        executor.submit("gw", f"quick{i}", recorder(log, "q"))
        wait_for(lambda: log == ["q+", "q-"])
    wait_for(lambda: not any(t.name.startswith("modbus-link-") for t in threading.enumerate()))


def test_shutdown_waits_a_bounded_time() -> None:
    ex = LinkExecutor(workers=1, slow_s=10)
    ex.start()
    release = threading.Event()
    ex.submit("gw", "stuck", release.wait)
    time.sleep(0.05)
    started = time.monotonic()
    ex.shutdown(0.3)
    assert time.monotonic() - started < 0.6
    assert not ex.submit("gw", "late", lambda: None)
    release.set()
