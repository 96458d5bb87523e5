"""Delivery of mint events to the platform (CONTRACT §6), with the mints table as the outbox.

Each mint's push body was fixed when it was committed; a `deliveries` row records how its
delivery stands (pending, delivered, rejected), how many attempts it took and when the next
one is due. Per plant, event k + 1 is sent only once event k is delivered or parked
(rejected), so the platform sees each plant's mints in order. A failed attempt waits with
exponential backoff and full jitter: uniform in [0, min(retry_max_interval, 1 s × 2^(n−1))]
after the n-th failure in a row, forever. The wait is stored, so a restart neither hammers
the platform nor forgets an event: a crash between the platform's answer and our commit
only sends the same bytes again under the same Idempotency-Key.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, and_, func, or_, select

from heliod.adapters.platform import PlatformSettings, Refused, Unavailable
from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.store import upsert
from heliod.daemon.config import Config, ConfigError

log = logging.getLogger("heliod.push")

PENDING, DELIVERED, REJECTED = "pending", "delivered", "rejected"
FIRST_DELAY_S = 1.0  # §6: backoff starts at 1 s and doubles
_ERROR_CHARS = 500


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


@dataclass(frozen=True, slots=True)
class Head:
    """The oldest undelivered, unparked event of a plant."""

    plant: str
    mwh_index: int
    body: bytes
    attempts: int
    next_attempt_us: int

    @property
    def id(self) -> str:
        """The event id and Idempotency-Key, `<plant>:<k>`."""
        return f"{self.plant}:{self.mwh_index}"


def _open(conn: Connection) -> list[tuple[str, int]]:
    """(plant, lowest k) of each plant's oldest mint that is neither delivered nor parked."""
    m, d = t.mints.c, t.deliveries.c
    stmt = (
        select(m.plant, func.min(m.mwh_index))
        .select_from(
            t.mints.outerjoin(t.deliveries, and_(d.plant == m.plant, d.mwh_index == m.mwh_index))
        )
        .where(or_(d.status.is_(None), d.status == PENDING))
        .group_by(m.plant)
        .order_by(m.plant)
    )
    return [(str(p), int(k)) for p, k in conn.execute(stmt)]


def head_states(conn: Connection) -> list[tuple[str, int, int, int]]:
    """(plant, k, attempts, next attempt µs) of each plant's next event, no body read."""
    d = t.deliveries.c
    out = []
    for plant, k in _open(conn):
        row = conn.execute(
            select(d.attempts, d.next_attempt_us).where(d.plant == plant, d.mwh_index == k)
        ).first()
        attempts, due = (int(row[0]), int(row[1])) if row is not None else (0, 0)
        out.append((plant, k, attempts, due))
    return out


def heads(conn: Connection, due_by_us: int | None = None) -> list[Head]:
    """Each plant's next event to send (only those due by `due_by_us` when given).

    A body is read only for the heads returned: a mint of 100,000 backers weighs megabytes.
    """
    m = t.mints.c
    out = []
    for plant, k, attempts, due in head_states(conn):
        if due_by_us is not None and due > due_by_us:
            continue
        event = conn.execute(select(m.event).where(m.plant == plant, m.mwh_index == k)).scalar_one()
        out.append(Head(plant, k, str(event).encode("utf-8"), attempts, due))
    return out


def record(
    conn: Connection,
    head: Head,
    *,
    status: str,
    next_attempt_us: int,
    http_status: int | None,
    error: str | None,
    now_us: int,
) -> None:
    """Write the outcome of one attempt on `head` (inside the caller's writer transaction)."""
    d = t.deliveries.c
    current = conn.execute(
        select(d.status, d.attempts).where(d.plant == head.plant, d.mwh_index == head.mwh_index)
    ).first()
    if current is not None and current[0] != PENDING:
        return  # settled meanwhile by another writer: its word stands
    upsert(
        conn,
        t.deliveries,
        [
            {
                "plant": head.plant,
                "mwh_index": head.mwh_index,
                "status": status,
                "attempts": (int(current[1]) if current is not None else 0) + 1,
                "next_attempt_us": next_attempt_us,
                "last_status": http_status,
                "last_error": None if error is None else error[:_ERROR_CHARS],
                "updated_us": now_us,
            }
        ],
        keys=["plant", "mwh_index"],
        replace=[
            "status",
            "attempts",
            "next_attempt_us",
            "last_status",
            "last_error",
            "updated_us",
        ],
    )


def platform_settings(config: Config) -> PlatformSettings | None:
    """The [platform] table as the HTTP client's settings; None when there is no push.

    Raises ConfigError when no secret is configured: an unsigned push could be forged.
    """
    section = config.platform
    if section is None:
        return None
    secret = config.secret("platform.secret")
    if not secret:
        raise ConfigError(
            ["platform.secret_file: required to sign pushes (or set HELIOD_PLATFORM_SECRET)"]
        )
    return PlatformSettings(
        push_url=section.push_url,
        secret=secret,
        backers_url=section.backers_url,
        timeout_s=section.timeout.total_seconds(),
    )


def _system_clock_us() -> int:
    return time.time_ns() // 1000


class Pusher:
    """Sends due events, one attempt per plant per pass, and records every outcome."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        *,
        max_interval_s: float,
        clock_us: Callable[[], int] = _system_clock_us,
        rng: random.Random | None = None,
        first_delay_s: float = FIRST_DELAY_S,
    ) -> None:
        self.store = store
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
                due = heads(conn, due_by_us=now)
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
            return min((due for *_, due in head_states(conn)), default=None)

    def attempt(self, head: Head) -> int:
        """One POST of `head`; returns 1 when it was settled (acknowledged or parked)."""
        try:
            status = self.sender.push(head.id, head.body)
        except Unavailable as exc:
            self.failures += 1
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
            except Exception:
                log.exception("push pass failed")
                due = None
            wait = poll_s
            if due is not None:
                wait = min(poll_s, max(0.0, (due - self.clock_us()) / 1e6))
            stop.wait(wait)
