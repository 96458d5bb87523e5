"""Counting refused and unrouted messages, logged without flooding the log (docs/mqtt.md)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("heliod.adapters.mqtt")

# One line per device per minute: a device that sends garbage every second would
# otherwise write 86,400 lines a day to a gateway's small SD card.
LOG_INTERVAL_S = 60.0
# Topics whose first unrouted message was logged; past this many, new ones are only counted
# (a wildcard subscription of another tool could bring any number of topic names).
MAX_LOGGED_TOPICS = 1000


@dataclass(slots=True)
class _Window:
    logged_at: float
    suppressed: int = 0


class BadPayloads:
    """Thread-safe counters of refused messages, by device and by (device, reason).

    Also of messages that reach no device at all (`unrouted`), by reason.
    """

    def __init__(
        self,
        interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self._interval = interval_s
        self._clock = clock
        self._log = logger
        self._lock = threading.Lock()
        self._by_device: Counter[str] = Counter()
        self._by_reason: Counter[tuple[str, str]] = Counter()
        self._windows: dict[str, _Window] = {}
        self._unrouted: Counter[str] = Counter()
        self._logged_topics: set[str] = set()

    def record(self, device: str, reason: str, detail: str, topic: str) -> None:
        """Count one refused message; log it unless its device was logged within the interval."""
        now = self._clock()
        with self._lock:
            self._by_device[device] += 1
            self._by_reason[device, reason] += 1
            window = self._windows.get(device)
            if window is not None and now - window.logged_at < self._interval:
                window.suppressed += 1
                return
            suppressed = window.suppressed if window is not None else 0
            self._windows[device] = _Window(logged_at=now)
        more = f" ({suppressed} more suppressed since the last line)" if suppressed else ""
        self._log.warning(
            "bad payload from device %s on %s: %s%s", device, topic, _short(detail), more
        )

    def unrouted(self, topic: str, reason: str) -> None:
        """Count one message that no device takes; log its topic the first time only."""
        with self._lock:
            self._unrouted[reason] += 1
            if topic in self._logged_topics or len(self._logged_topics) >= MAX_LOGGED_TOPICS:
                return
            self._logged_topics.add(topic)
            full = len(self._logged_topics) == MAX_LOGGED_TOPICS
        self._log.warning(
            "mqtt message on %s matches no device (%s): acknowledged and not stored%s",
            _short(topic),
            _UNROUTED.get(reason, reason),
            f"; further topics are only counted ({MAX_LOGGED_TOPICS} logged)" if full else "",
        )

    def flush(self) -> None:
        """Log the count of messages suppressed since each device's last line (e.g. at stop)."""
        with self._lock:
            pending = {d: w.suppressed for d, w in self._windows.items() if w.suppressed}
            for device in pending:
                self._windows[device].suppressed = 0
        for device, count in sorted(pending.items()):
            self._log.warning("%d more bad payloads from device %s were not logged", count, device)

    @property
    def by_device(self) -> dict[str, int]:
        """Refused messages per device since start."""
        with self._lock:
            return dict(self._by_device)

    @property
    def unrouted_by_reason(self) -> dict[str, int]:
        """Messages that reached no device since start, by reason."""
        with self._lock:
            return dict(self._unrouted)

    @property
    def by_reason(self) -> dict[tuple[str, str], int]:
        """Refused messages per (device, reason) since start."""
        with self._lock:
            return dict(self._by_reason)


_UNROUTED = {
    "no_device": "its topic matches no configured filter",
    "removed_filter": "it came by the subscription of a filter no longer configured",
    "bad_topic": "its topic is not UTF-8",
    "error": "an unexpected error while decoding it",
}


def _short(text: str, limit: int = 200) -> str:
    # A payload's text can end up in `detail` (a key name); keep log lines bounded.
    return text if len(text) <= limit else text[:limit] + "…"
