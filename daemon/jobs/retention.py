"""The retention job: raw readings older than `raw_retention` pruned once every consumer
has passed them (docs/storage.md, "Retention"), and outbox lines nobody will send."""

from __future__ import annotations

import logging
from collections.abc import Callable

from heliod.adapters.store import Store
from heliod.adapters.store.ledger_repo import max_reading_id
from heliod.adapters.store.relaxed import trim_outbox
from heliod.adapters.store.retention import prune

log = logging.getLogger("heliod.retention")

OUTBOX_STEP = 2000  # outbox rows deleted per transaction when there is no export


class Retention:
    """Prunes what the ledger and the export no longer need."""

    def __init__(
        self, store: Store, clock_us: Callable[[], int], keep_us: int, *, exporting: bool
    ) -> None:
        self._store = store
        self._clock_us = clock_us
        self._keep_us = keep_us
        self._exporting = exporting

    def run(self) -> None:
        """One pass: prune readings past every consumer, drop outbox lines of no export."""
        cutoff = self._clock_us() - self._keep_us
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
