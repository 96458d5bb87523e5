"""The gateway's clock: the one `Clock` every part reads time through.

Parts take a `Clock` (or its `now_us`) as a parameter, so a test or the demo can run the
whole daemon on a clock of its own; the system clock is the default everywhere.
Supervision timers (APScheduler triggers, backoff, deadlines) use the real monotonic
clock instead: they measure waiting, not the time readings are stamped with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from heliod.rewards.times import from_us


def _system_now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Clock:
    """µs since the epoch, running `rate` clock seconds per real second."""

    now_us: Callable[[], int] = _system_now_us
    rate: float = 1.0  # the demo runs its clock faster than real time

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        if self.now_us is _system_now_us:
            # The same instant to the µs, a third of the cost: polls stamp every reading.
            return datetime.now(UTC)
        return from_us(self.now_us())


SYSTEM_CLOCK = Clock()


def system_now_us() -> int:
    """The gateway's wall clock in µs since the epoch."""
    return _system_now_us()


def utc_now() -> datetime:
    """The gateway's wall clock as an aware UTC datetime."""
    return SYSTEM_CLOCK.now()
