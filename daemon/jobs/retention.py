"""The retention job: raw readings older than `raw_retention` pruned once every consumer
has passed them (docs/storage.md, "Retention"), and outbox lines nobody will send.

The cut-off is taken from a clock retention trusts: the gateway's clock, but never more
than one day past the last pass (or, before any, the arrival of the newest stored
reading) plus twice the real time elapsed since this process started. A gateway clock
that jumps years ahead therefore never prunes the readings of the last `raw_retention`;
after a real outage the cut-off catches up at twice the speed of time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from heliod.adapters.store import Store
from heliod.adapters.store.ledger_repo import max_reading_id
from heliod.adapters.store.relaxed import trim_outbox
from heliod.adapters.store.retention import pass_clock, prune, record_pass_clock
from heliod.rewards.times import rfc3339

log = logging.getLogger("heliod.retention")

OUTBOX_STEP = 2000  # outbox rows deleted per transaction when there is no export
STOPPED_ALLOWANCE_US = 86_400_000_000  # time a restart may claim to have passed: 1 day
CATCH_UP = 2  # the trusted clock runs at most this many times faster than real time
WARN_GAP_US = 3_600_000_000  # a clock this far past the trusted one is logged


def _monotonic_us() -> int:
    return time.monotonic_ns() // 1000


class Retention:
    """Prunes what the ledger and the export no longer need."""

    def __init__(
        self,
        store: Store,
        clock_us: Callable[[], int],
        keep_us: int,
        *,
        exporting: bool,
        monotonic_us: Callable[[], int] = _monotonic_us,
    ) -> None:
        self._store = store
        self._clock_us = clock_us
        self._keep_us = keep_us
        self._exporting = exporting
        self._monotonic_us = monotonic_us
        self._started = monotonic_us()
        self._warned = False
        # Read at start, before this run stores anything stamped by its own clock.
        with store.read() as conn:
            self._since = pass_clock(conn)

    def trusted_now_us(self) -> int:
        """The gateway's clock, bounded by the last pass and the real time since start."""
        now = self._clock_us()
        if self._since is None:
            return now
        elapsed = max(0, self._monotonic_us() - self._started)
        bound = self._since + STOPPED_ALLOWANCE_US + CATCH_UP * elapsed
        if now - bound > WARN_GAP_US and not self._warned:
            self._warned = True
            log.warning(
                "retention: the clock (%s) is far past the last pass (%s) and the real time "
                "since start: readings are pruned as of %s until it catches up",
                rfc3339(now),
                rfc3339(self._since),
                rfc3339(bound),
            )
        return min(now, bound)

    def run(self) -> None:
        """One pass: prune readings past every consumer, drop outbox lines of no export."""
        trusted = self.trusted_now_us()
        record_pass_clock(self._store, trusted)
        cutoff = trusted - self._keep_us
        consumers = ["accountant"] + (["exporter"] if self._exporting else [])
        result = prune(self._store, cutoff, consumers)
        if not self._exporting:
            # Lines rendered while [influxdb] was configured: nothing will send them now
            # (should the export come back, their readings are formatted instead).
            with self._store.read() as conn:
                newest = max_reading_id(conn)
            while trim_outbox(self._store, newest, OUTBOX_STEP):
                pass
        if result.readings or result.rejected:
            log.info(
                "retention: %d readings, %d rejected readings pruned",
                result.readings,
                result.rejected,
            )
