"""Delivery of events to the platform (docs/platform.md, "Push"): the mints and the
milestone and challenge events are the outbox (adapters/store/deliveries.py).

Each event's push body was fixed when it was committed; a delivery row records how its
delivery stands (pending, delivered, rejected), how many attempts it took and when the next
one is due. Per plant, an event is sent only once the one before it is delivered or parked
(rejected), so the platform sees each plant's mints in order, each goal event after the
mint that caused it. A failed attempt waits with exponential backoff and full jitter:
uniform in [0, min(retry_max_interval, 1 s × 2^(n−1))] after the n-th failure in a row,
forever. The wait is stored, so a restart neither hammers
the platform nor forgets an event: a crash between the platform's answer and our commit
only sends the same bytes again under the same Idempotency-Key.

Each plant has a delivery worker of its own (`PushWorkers`), so a plant whose attempt
hangs until its deadline (a platform answering one byte at a time) never delays another
plant's events; a last worker takes the plants no longer configured that still have
events to send.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from heliod.adapters.clock import system_now_us
from heliod.adapters.platform import Refused, Stopping, Unavailable
from heliod.adapters.store import Store
from heliod.adapters.store.deliveries import (
    DELIVERED,
    PENDING,
    REJECTED,
    Head,
    head_states,
    heads,
    parse_event_id,
    record,
    requeue,
)
from heliod.daemon.jobs.streak import Streak, Streaks

log = logging.getLogger("heliod.push")

FIRST_DELAY_S = 1.0  # docs/platform.md: backoff starts at 1 s and doubles


class Sender(Protocol):
    """Sends one event; returns the acknowledging HTTP status or raises Unavailable/Refused."""

    def push(self, event_id: str, body: bytes) -> int:
        """POST the body with a fresh signature and the Idempotency-Key `event_id`."""
        ...


def backoff_s(
    failures: int, cap_s: float, rng: random.Random, first_s: float = FIRST_DELAY_S
) -> float:
    """Full jitter after `failures` failures in a row: uniform in [0, min(cap, first·2^(n−1))]."""
    ceiling = min(cap_s, first_s * 2 ** min(failures - 1, 62))
    return rng.uniform(0.0, ceiling)


def sync_retry(store: Store, event_id: str | None = None, now_us: int | None = None) -> int:
    """Re-queue parked events (all, or one: `plant:k`, `plant:milestone:M` or
    `plant:challenge:ID`); returns how many.

    Raises ValueError for a malformed id and LookupError for an id that names no event.
    An event that is not parked (pending or delivered) is left alone: 0 is returned.
    """
    event = None if event_id is None else parse_event_id(event_id)
    with store.write() as conn:
        return requeue(conn, system_now_us() if now_us is None else now_us, event)


class Pusher:
    """Sends due events of the plants it `wants`, one attempt per plant per pass, and
    records every outcome."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        *,
        max_interval_s: float,
        clock_us: Callable[[], int] = system_now_us,
        rng: random.Random | None = None,
        first_delay_s: float = FIRST_DELAY_S,
        wants: Callable[[str], bool] | None = None,
        streak: Streak | None = None,
    ) -> None:
        self.store = store
        self.wants = wants  # None: every plant
        self.streak = streak or Streak()  # failed attempts in a row, for /healthz
        self.sender = sender
        self.max_interval_s = max_interval_s
        self.first_delay_s = first_delay_s
        self.clock_us = clock_us
        self.rng = rng or random.Random()  # jitter only; never a secret
        self.delivered = 0  # since start, for logs and tests
        self.failures = 0

    def deliver_due(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Attempt every due event until none is due; returns how many were settled."""
        settled = 0
        while not should_stop():
            now = self.clock_us()
            with self.store.read() as conn:
                due = heads(conn, due_by_us=now, wants=self.wants)
            if not due:
                return settled
            for head in due:
                if should_stop():
                    break
                settled += self.attempt(head)
        return settled

    def next_due_us(self) -> int | None:
        """When the earliest waiting event is due (None: nothing to send)."""
        with self.store.read() as conn:
            return min(
                (
                    h.next_attempt_us
                    for h in head_states(conn)
                    if self.wants is None or self.wants(h.plant)
                ),
                default=None,
            )

    def attempt(self, head: Head) -> int:
        """One POST of `head`; returns 1 when it was settled (acknowledged or parked)."""
        try:
            status = self.sender.push(head.id, head.body)
        except Stopping:
            # Abandoned by a stop: nothing is recorded; the next start sends the same bytes.
            return 0
        except Unavailable as exc:
            self.failures += 1
            self.streak.failed(f"push {head.id}: {exc}")
            now = self.clock_us()
            wait = backoff_s(head.attempts + 1, self.max_interval_s, self.rng, self.first_delay_s)
            if exc.retry_after_s is not None:
                # The platform asked for a pause: honour it, within our own ceiling.
                wait = max(wait, min(exc.retry_after_s, self.max_interval_s))
            with self.store.write() as conn:
                record(
                    conn,
                    head,
                    status=PENDING,
                    next_attempt_us=now + int(wait * 1e6),
                    http_status=exc.status,
                    error=str(exc),
                    now_us=now,
                )
            tries = head.attempts + 1
            # Attempts 1, 2, 4, 8, …: an outage stays visible without flooding the log.
            level = logging.WARNING if tries & (tries - 1) == 0 else logging.DEBUG
            log.log(
                level,
                "push %s failed (attempt %d): %s; next in %.1f s",
                head.id,
                tries,
                exc,
                wait,
            )
            return 0
        except Refused as exc:
            now = self.clock_us()
            with self.store.write() as conn:
                record(
                    conn,
                    head,
                    status=REJECTED,
                    next_attempt_us=now,
                    http_status=exc.status,
                    error=str(exc),
                    now_us=now,
                )
            log.error(
                "push %s rejected by the platform (%s): parked; `heliod sync retry %s` requeues it",
                head.id,
                exc,
                head.id,
            )
            return 1
        now = self.clock_us()
        with self.store.write() as conn:
            record(
                conn,
                head,
                status=DELIVERED,
                next_attempt_us=now,
                http_status=status,
                error=None,
                now_us=now,
            )
        self.delivered += 1
        self.streak.succeeded()
        if head.attempts:
            log.info("push %s delivered after %d attempts", head.id, head.attempts + 1)
        else:
            log.info("push %s delivered", head.id)
        return 1

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Deliver until `stop` is set, waking every `poll_s` for new mints."""
        while not stop.is_set():
            try:
                self.deliver_due(stop.is_set)
                due = self.next_due_us()
            except Exception as exc:
                self.streak.failed(exc)
                log.exception("push pass failed")
                due = None
            wait = poll_s
            if due is not None:
                wait = min(poll_s, max(0.0, (due - self.clock_us()) / 1e6))
            stop.wait(wait)


STOP_GRACE_S = 2.0  # of the stop budget (8 s), what a push in flight may take


class PushWorkers:
    """One delivery thread per plant (and one for the plants not configured any more).

    `make(wants, streak)` builds a Pusher with a sender of its own for the plants `wants`
    accepts, counting its failures in a row in `streak`: each worker has its own in
    `streaks` (the plant's id; "" for the plants not configured any more), so one plant's
    failures never mark or hide another's.
    """

    def __init__(
        self,
        plants: Collection[str],
        make: Callable[[Callable[[str], bool], Streak], Pusher],
        streaks: Streaks | None = None,
    ):
        configured = frozenset(plants)
        self.streaks = streaks or Streaks()
        workers: list[tuple[str, Callable[[str], bool]]] = [
            (p, _only(p)) for p in sorted(configured)
        ]
        workers.append(("", lambda plant: plant not in configured))
        self.pushers: Sequence[Pusher] = [make(w, self.streaks.of(name)) for name, w in workers]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=p.run, args=(self._stop,), name=f"heliod-push-{i}", daemon=True)
            for i, p in enumerate(self.pushers)
        ]

    def start(self) -> None:
        """Start delivering."""
        for thread in self._threads:
            thread.start()

    def alive(self) -> bool:
        """True while every delivery loop runs."""
        return all(thread.is_alive() for thread in self._threads)

    def stop(self, timeout_s: float) -> None:
        """Give the attempts in flight STOP_GRACE_S to be answered (outcome recorded), then
        abandon the rest (nothing recorded: resent at the next start with the same bytes)."""
        self._stop.set()
        deadline = time.monotonic() + min(timeout_s, STOP_GRACE_S)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            log.warning("stopping while a push awaits the platform: it is sent again at start")
        for pusher in self.pushers:
            close = getattr(pusher.sender, "close", None)
            if close is not None:
                close()  # cancels an attempt still in flight at once
        for thread in self._threads:
            thread.join(1.0)


def _only(plant: str) -> Callable[[str], bool]:
    return lambda other: other == plant
