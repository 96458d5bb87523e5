"""Runs polls link by link: healthy links share a few workers, a slow link gets its own thread.

Requests on one link (a gateway or a serial line) must go one at a time, so a link's
polls run in order on one worker. Threads are costly when they are many: with CPython's
GIL, a hundred threads waking at once spend more CPU handing the lock around than
reading registers (docs/performance.md). So healthy links are served by a shared pool
that starts with one worker and grows only when links wait: by one worker when a link has
waited `slow_s` behind quick polls, by one per waiting link when every worker is held by
one poll; it shrinks by half its extra workers after QUIET_CHECKS checks in a row in
which no link waited `slow_s / 4`. A link that turns slow (a poll running longer than
`slow_s / 2`, or failing) is moved to a thread of its own, where its timeouts delay
nobody else. A stuck pool worker is retired by `watch()` and replaced at once; a
dedicated link returns to the pool after `recover_after` quick polls in a row.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from queue import Empty, SimpleQueue

log = logging.getLogger(__name__)

Task = Callable[[], object]  # returns False when it failed: its link then gets its own thread


class _Link:
    """A link's queued tasks and, while it is slow, its dedicated worker."""

    __slots__ = ("fast_streak", "key", "pending", "queued_at", "scheduled", "worker")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.pending: deque[tuple[str, Task]] = deque()
        self.scheduled = False  # queued on a worker or being drained
        self.queued_at: float | None = None  # put on the shared queue, not yet taken
        self.worker: _Worker | None = None
        self.fast_streak = 0


class _Worker(threading.Thread):
    """Takes links from its queue and runs their tasks in order."""

    def __init__(self, executor: LinkExecutor, queue: SimpleQueue[_Link | None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.executor = executor
        self.queue = queue
        self.busy_since: float | None = None
        self.link: _Link | None = None
        self.dedicated = False

    def run(self) -> None:
        executor = self.executor
        while True:
            try:
                # A shared worker without work wakes every `idle_s`, in case the pool
                # should shrink; after a link it asks at once.
                link = self.queue.get(timeout=None if self.dedicated else executor.idle_s)
            except Empty:
                if executor._shrink(self):
                    return
                continue
            if link is None:
                return
            executor._drain(self, link)
            if self.dedicated:
                if executor._release(self, link):
                    return
            elif executor._shrink(self):
                return


class LinkExecutor:
    """Per-link serial execution over a small pool, with dedicated threads for slow links."""

    MAX_POOL = 64  # shared workers at most, while links wait behind stuck ones
    QUIET_CHECKS = 4  # checks in a row in which no link waited slow_s / 4, before shrinking
    IDLE_CHECKS = 120  # checks without a poll before they count as quiet (60 s)

    def __init__(
        self,
        workers: int = 1,
        slow_s: float = 0.5,
        recover_after: int = 5,
        idle_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slow_s = slow_s
        self.idle_s = idle_s
        self.recover_after = recover_after
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._links: dict[Hashable, _Link] = {}
        self._tasks: set[str] = set()
        self._pool_queue: SimpleQueue[_Link | None] = SimpleQueue()
        self._pool: list[_Worker] = []
        self._threads: list[_Worker] = []
        self._size = workers
        self._longest_wait = 0.0  # of the links taken off the shared queue since the last watch
        self._ending = 0  # shared workers to end, as they finish a link or find none
        self._quiet = 0  # checks in a row in which no link waited slow_s / 4
        self._took = False  # a link taken off the shared queue since the last check
        self._idle_checks = 0  # checks in a row with no link taken or waiting
        self._names = itertools.count()
        self._stopping = False
        self.retired = 0  # pool workers taken out because a link got stuck on them
        self.dedicated = 0  # links moved to a thread of their own

    def start(self) -> None:
        """Start the shared workers."""
        with self._lock:
            for _ in range(self._size):
                self._spawn_pool_worker()

    def submit(self, link_key: Hashable, task_id: str, task: Task) -> bool:
        """Queue `task` on its link; False (not queued) if `task_id` is still queued or running."""
        return not self.submit_many([(link_key, task_id, task)])

    def submit_many(self, items: Iterable[tuple[Hashable, str, Task]]) -> list[str]:
        """Queue several tasks at once; returns the ids not queued (still queued or running)."""
        refused: list[str] = []
        with self._lock:
            for link_key, task_id, task in items:
                if self._stopping or task_id in self._tasks:
                    refused.append(task_id)
                    continue
                self._tasks.add(task_id)
                link = self._links.get(link_key)
                if link is None:
                    link = self._links[link_key] = _Link(link_key)
                link.pending.append((task_id, task))
                if not link.scheduled:
                    link.scheduled = True
                    if link.worker is None:
                        link.queued_at = self._monotonic()
                        self._pool_queue.put(link)
                    else:
                        link.worker.queue.put(link)
        return refused

    def watch(self) -> None:
        """Retire stuck pool workers; grow the pool while links wait, shrink it when none do."""
        now = self._monotonic()
        with self._lock:
            if self._stopping:
                return
            # Blocked: every shared worker has been on one task for half of slow_s. Links
            # queued behind workers that are getting through them are the normal state
            # after each poll tick, and a thread per waiting link then costs more than
            # the polls themselves (docs/performance.md, "Modbus polling").
            half = self.slow_s / 2
            blocked = all(
                w.busy_since is not None and now - w.busy_since >= half for w in self._pool
            )
            stuck = False
            for worker in list(self._pool):
                since, link = worker.busy_since, worker.link
                if since is None or link is None or now - since < self.slow_s:
                    continue
                stuck = True
                self._pool.remove(worker)
                self.retired += 1
                self.dedicated += 1
                log.info("link %s is slow: moved to its own thread", link.key)
                self._dedicate(worker, link)
                if len(self._pool) < self._size:
                    self._spawn_pool_worker()
            waited = [now - x.queued_at for x in self._links.values() if x.queued_at is not None]
            longest = max([self._longest_wait, *waited])
            self._longest_wait = 0.0
            polled = self._took or bool(waited)  # a poll since the last check, or one due
            self._took = False
            self._idle_checks = 0 if polled else self._idle_checks + 1
            if stuck or blocked:
                # Many links turning slow at once would otherwise be freed one or two per
                # watch while a healthy link waits behind them: give every waiting link a
                # worker now. Counted from the links, not the queue: a worker that has
                # just taken a link off the queue is not busy yet, and would be counted
                # as idle and not waiting.
                waiting = sum(1 for x in self._links.values() if x.scheduled and x.worker is None)
                for _ in range(min(waiting, self.MAX_POOL) - len(self._pool)):
                    self._spawn_pool_worker()
                self._quiet = self._ending = 0
            elif longest >= self.slow_s:
                # Behind: a link has waited slow_s (taken since the last check, or still
                # waiting) while the workers were getting through the queue (many devices
                # that each answer in tens of milliseconds).
                if len(self._pool) < self.MAX_POOL:
                    self._spawn_pool_worker()
                self._quiet = self._ending = 0
            elif longest < self.slow_s / 4:
                # Quiet for QUIET_CHECKS checks in a row: half the extra workers end. One
                # worker while the polls are quick, for every extra one hands the
                # interpreter lock back and forth at each request. A check between two
                # polls (no link taken, none waiting: a 10 s interval) counts only once
                # the pool has been idle IDLE_CHECKS checks, or the pool would shrink
                # between polls and grow again at each.
                if not polled and self._idle_checks < self.IDLE_CHECKS:
                    return
                self._quiet += 1
                if self._quiet >= self.QUIET_CHECKS and len(self._pool) > self._size:
                    self._ending = max(1, (len(self._pool) - self._size) // 2)
                    self._quiet = 0
            else:
                self._quiet = self._ending = 0

    def shutdown(self, timeout_s: float) -> None:
        """Run no new task; wait up to `timeout_s` for the running ones."""
        deadline = self._monotonic() + timeout_s
        with self._lock:
            self._stopping = True
            threads = list(self._threads)
            for link in self._links.values():
                link.pending.clear()
            for worker in threads:
                worker.queue.put(None)
        for worker in threads:
            if worker.is_alive():
                worker.join(max(0.0, deadline - self._monotonic()))

    def _spawn_pool_worker(self) -> None:
        worker = _Worker(self, self._pool_queue, f"modbus-pool-{next(self._names)}")
        self._pool.append(worker)
        self._threads.append(worker)
        worker.start()

    def _dedicate(self, worker: _Worker, link: _Link) -> None:
        """Make `worker` (possibly still running one of link's tasks) the link's own thread."""
        worker.queue = SimpleQueue()
        worker.dedicated = True
        worker.name = f"modbus-link-{next(self._names)}"
        link.worker = worker
        link.fast_streak = 0

    def _drain(self, worker: _Worker, link: _Link) -> None:
        # Two lock sections per task: the end of one task and the start of the next
        # share one (this runs for every poll).
        with self._lock:
            if link.queued_at is not None:
                waited = self._monotonic() - link.queued_at
                self._longest_wait = max(self._longest_wait, waited)
                self._took = True
                link.queued_at = None
            item = self._take(worker, link)
        while item is not None:
            task_id, task = item
            failed = True
            try:
                failed = task() is False
            except Exception:
                log.exception("task %s crashed", task_id)
            finally:
                with self._lock:
                    self._done(worker, link, task_id, failed)
                    item = self._take(worker, link)

    def _take(self, worker: _Worker, link: _Link) -> tuple[str, Task] | None:
        """The link's next task, marked as running on `worker`; None when it has none here."""
        if link.worker is not None and link.worker is not worker:
            link.worker.queue.put(link)  # became slow: its own thread takes over
            return None
        if not link.pending or self._stopping:
            link.scheduled = False
            return None
        item = link.pending.popleft()
        worker.link, worker.busy_since = link, self._monotonic()
        return item

    def _done(self, worker: _Worker, link: _Link, task_id: str, failed: bool) -> None:
        # A failed poll counts as slow: the next one may well time out, and it must not
        # do so on a shared worker (a dead device keeps failing). So does a poll that held
        # its worker for half of slow_s, as long as the blocked rule of watch() takes
        # to give every waiting link a worker: a link that does so at every tick gets its
        # own thread instead.
        slow = failed or self._monotonic() - (worker.busy_since or 0) >= self.slow_s / 2
        worker.busy_since = worker.link = None
        self._tasks.discard(task_id)
        link.fast_streak = 0 if slow else link.fast_streak + 1
        if slow and link.worker is None and not self._stopping:
            # Finished, but too slow to share a worker next time.
            dedicated = _Worker(self, SimpleQueue(), f"modbus-link-{next(self._names)}")
            dedicated.dedicated = True
            link.worker = dedicated
            self.dedicated += 1
            self._threads.append(dedicated)
            dedicated.start()

    def _shrink(self, worker: _Worker) -> bool:
        """End a shared worker the pool grew for, when watch() asked for it; True to end."""
        if not self._ending:
            return False  # the usual case, read without the lock
        with self._lock:
            if self._ending <= 0 or len(self._pool) <= self._size or worker not in self._pool:
                return False
            self._ending -= 1
            self._pool.remove(worker)
            self._threads.remove(worker)
            return True

    def _release(self, worker: _Worker, link: _Link) -> bool:
        """Return a link that is quick again to the pool; True when the worker should end."""
        with self._lock:
            if link.fast_streak < self.recover_after or link.scheduled or self._stopping:
                return False
            link.worker = None
            self._threads.remove(worker)
            log.info("link %s is quick again: back to the shared workers", link.key)
            return True
