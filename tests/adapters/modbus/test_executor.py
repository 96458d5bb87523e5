"""LinkExecutor: serial per link, shared workers, slow links moved to their own thread."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from heliod.adapters.modbus.executor import LinkExecutor


@pytest.fixture
def executor() -> Iterator[LinkExecutor]:
    ex = LinkExecutor(workers=1, slow_s=0.2, recover_after=2)
    ex.start()
    yield ex
    ex.shutdown(2)


Clocked = Callable[..., tuple[LinkExecutor, list[float]]]


@pytest.fixture
def clocked() -> Iterator[Clocked]:
    """Started executors on a clock the test moves (`now[0]`), shut down after the test."""
    made: list[LinkExecutor] = []

    def make(**options: float) -> tuple[LinkExecutor, list[float]]:
        now = [100.0]
        ex = LinkExecutor(monotonic=lambda: now[0], **options)  # type: ignore[arg-type]
        ex.start()
        made.append(ex)
        return ex, now

    yield make
    for ex in made:
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


def pool_threads() -> int:
    """Shared workers alive in this process."""
    return sum(1 for t in threading.enumerate() if t.name.startswith("modbus-pool-"))


def held(started: list[int], i: int, gate: threading.Event) -> Callable[[], None]:
    """A poll that records its start, then waits for `gate`."""

    def task() -> None:
        started.append(i)
        gate.wait()

    return task


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


def test_links_queued_behind_busy_workers_get_no_thread_until_the_pool_is_blocked(
    clocked: Clocked,
) -> None:
    ex, now = clocked(workers=2, slow_s=0.5)
    gate = threading.Event()
    started: list[int] = []
    try:
        for i in range(20):  # a poll tick: every link queued at once
            ex.submit(f"link{i}", f"dev{i}", held(started, i, gate))
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


def test_links_waiting_long_behind_a_busy_worker_add_one_worker_at_a_time(
    clocked: Clocked,
) -> None:
    ex, now = clocked(workers=1, slow_s=0.5, idle_s=0.2)
    gates = [threading.Event() for _ in range(20)]
    started: list[int] = []
    try:
        for i in range(20):  # a tick of devices that each answer in tens of milliseconds
            ex.submit(f"link{i}", f"dev{i}", held(started, i, gates[i]))
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
        ex.watch()  # the links taken since the last check had waited slow_s: one more
        assert pool_threads() == 4
        for _ in range(2 * ex.QUIET_CHECKS):
            ex.watch()  # between two polls (none taken, none waiting): neither quiet nor busy
        time.sleep(0.5)  # idle_s and more
        assert pool_threads() == 4
        for _ in range(ex.IDLE_CHECKS + ex.QUIET_CHECKS):
            ex.watch()  # no poll for a minute: quiet
        wait_for(lambda: pool_threads() == 3)
        ids = itertools.count()
        done: list[int] = []
        for expected in (2, 1):  # quick polls, none waiting: half the extra workers end
            for _ in range(ex.QUIET_CHECKS):
                done.clear()
                for i in range(20):
                    ex.submit(f"link{i}", f"quick{next(ids)}", partial(done.append, i))
                wait_for(lambda: len(done) == 20)
                ex.watch()
            wait_for(lambda n=expected: pool_threads() == n)
        ex.watch()
        time.sleep(0.5)
        assert pool_threads() == 1  # never below the pool's size
    finally:
        for gate in gates:
            gate.set()


def test_a_blocked_pool_gives_every_waiting_link_a_worker_though_links_waited_long(
    clocked: Clocked,
) -> None:
    ex, now = clocked(workers=1, slow_s=0.5)
    gates = [threading.Event() for _ in range(20)]
    started: list[int] = []
    try:
        for i in range(20):
            ex.submit(f"link{i}", f"dev{i}", held(started, i, gates[i]))
        wait_for(lambda: started == [0])
        now[0] += 0.2
        gates[0].set()
        wait_for(lambda: started == [0, 1])
        now[0] += 0.3  # the worker held 0.3 s by one poll, the others queued 0.5 s ago
        ex.watch()
        wait_for(lambda: len(started) == 20)  # blocked: a worker each, not one more
    finally:
        for gate in gates:
            gate.set()


def test_the_pool_shrinks_once_links_no_longer_wait_though_every_worker_has_work(
    clocked: Clocked,
) -> None:
    ex, now = clocked(workers=1, slow_s=0.5, idle_s=0.5)
    gate = threading.Event()
    started: list[int] = []
    done: list[int] = []
    try:
        for i in range(10):  # an outage: the one worker held, every link waiting
            ex.submit(f"link{i}", f"dev{i}", held(started, i, gate))
        wait_for(lambda: len(started) == 1)
        now[0] += 0.3
        ex.watch()
        wait_for(lambda: len(started) == 10)  # a worker per waiting link
        assert pool_threads() == 10
        gate.set()
        # Quick polls again, ten links at every tick (ticks 20 ms apart, less than idle_s):
        # every worker may find work at every tick, yet no link waits. Back to one.
        for tick in range(1, 40):
            done.clear()
            for i in range(10):
                ex.submit(f"link{i}", f"dev{i}-{tick}", partial(done.append, i))
            wait_for(lambda: len(done) == 10)
            now[0] += 0.5
            ex.watch()
            time.sleep(0.02)
            if pool_threads() == 1:
                break
        assert pool_threads() == 1
    finally:
        gate.set()


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


def test_a_poll_holding_the_worker_for_half_of_slow_s_gets_its_link_a_thread() -> None:
    # As long as the blocked rule waits before giving every waiting link a worker: a link
    # doing that at every tick would start a burst of threads at every tick.
    ex = LinkExecutor(workers=1, slow_s=1.0)
    ex.start()
    log: list[str] = []
    try:
        ex.submit("rtu", "slowish", recorder(log, "s", 0.6))
        wait_for(lambda: log == ["s+", "s-"])
        wait_for(lambda: ex.dedicated == 1)
        ex.submit("tcp", "quick", recorder(log, "q", 0.2))  # under half: shared
        wait_for(lambda: ex.submit("tcp", "quick", lambda: None))  # its id freed: done
        assert ex.dedicated == 1
    finally:
        ex.shutdown(2)


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
