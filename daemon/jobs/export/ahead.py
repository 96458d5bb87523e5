"""Batches built ahead on a helper thread while the export loop sends the current one.

SQLite builds a batch's line protocol with the GIL released, so building overlaps with
the HTTP write of the batch before it. Up to `depth` built batches wait in a queue: a
build that happens to take longer than a send (the machine is busy, the next window has
extra fields) does not leave the writer waiting, and memory stays a few batches. Built
batches are not sent: only the batch on the wire can be resent after a crash.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

from heliod.adapters.store.export_source import Batch

DEPTH = 2  # batches built ahead of the one being sent (about 0.5 MB each at 5,000 points)


class BuiltAhead:
    """Iterates the batches after `after`, built on a thread `depth` ahead; `close()` stops it."""

    def __init__(self, next_batch: Callable[[int], Batch], after: int, depth: int = DEPTH) -> None:
        self._queue: queue.Queue[Batch | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._build, args=(next_batch, after), name="heliod-export-build", daemon=True
        )
        self._thread.start()

    def next(self) -> Batch:
        """The next batch (empty when the backlog ends); raises what the build raised."""
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop building and wait for the thread (it ends within one batch)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a pending put
                self._queue.get(timeout=0.05)
        self._thread.join()

    def _build(self, next_batch: Callable[[int], Batch], after: int) -> None:
        try:
            while not self._stop.is_set():
                batch = next_batch(after)
                self._put(batch)
                if not batch.more:
                    return
                after = batch.last_id
        except BaseException as exc:  # handed to the loop, which logs and backs off
            self._put(exc)

    def _put(self, item: Batch | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue
