"""Logging for the daemon: journald-friendly under systemd, a plain format elsewhere.

Under systemd stderr is a stream connected to journald (`$JOURNAL_STREAM` is set). journald
stamps each line itself and reads a leading `<N>` as the line's syslog priority
(sd-daemon(3)), so lines carry the priority and no timestamp. Every line of a multi-line
message (a traceback) gets the prefix, because journald stores each line as one entry.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TextIO

# syslog priorities (RFC 5424 §6.2.1) as sd-daemon's SD_ERR, SD_WARNING, ...
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"
REDACTED = "[redacted]"
_MIN_SECRET_LEN = 4  # shorter "secrets" would redact ordinary words; config refuses none


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (unknown levels round down to the next known)."""
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class JournalFormatter(logging.Formatter):
    """`<N>logger: message`, each line of the message prefixed with the priority."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record's text with `<N>` before every line."""
        prefix = f"<{priority(record.levelno)}>"
        text = super().format(record)
        return "\n".join(prefix + line for line in text.splitlines() or [""])


class SecretFilter(logging.Filter):
    """Replaces known secret values in every record by `[redacted]`: secrets are never logged."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Also redact these values from now on."""
        self._secrets.update(s for s in secrets if s and len(s) >= _MIN_SECRET_LEN)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message (arguments merged) without any secret; never drops it."""
        if not self._secrets:
            return True
        message = record.getMessage()
        clean = message
        for secret in self._secrets:
            clean = clean.replace(secret, REDACTED)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in self._secrets:
                record.exc_text = record.exc_text.replace(secret, REDACTED)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class QuietSchedulers(logging.Filter):
    """Drops APScheduler's INFO chatter ("Added job", "Scheduler started"), keeps its warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for sub-WARNING records of scheduler loggers."""
        if record.levelno >= logging.WARNING:
            return True
        name = record.name
        return not (name.startswith("apscheduler") or name.endswith(".scheduler"))


class RateLimited(logging.Filter):
    """Lets a message starting with one of `prefixes` through once per `every_s`.

    The next one that passes says how many were dropped meanwhile, and only the first
    carries its traceback.
    """

    def __init__(
        self,
        prefixes: Iterable[str],
        every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = tuple(prefixes)
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat within the period; True (annotated) otherwise."""
        message = record.getMessage()
        prefix = next((p for p in self._prefixes if message.startswith(p)), None)
        if prefix is None:
            return True
        now = self._clock()
        with self._lock:
            last = self._last.get(prefix)
            if last is not None and now - last < self._every_s:
                self._dropped[prefix] = self._dropped.get(prefix, 0) + 1
                return False
            self._last[prefix] = now
            dropped = self._dropped.pop(prefix, 0)
        if last is not None:
            record.exc_info, record.exc_text = None, None
            first_line = message.splitlines()[0]
            record.msg = f"{first_line} (again; {dropped} more not logged)"
            record.args = None
        return True


# asyncio logs this once per failed accept(), up to the listen backlog per event-loop turn,
# when the process runs out of descriptors: 466,924 lines (207 MB) in 40 s were seen.
ACCEPT_EXHAUSTED = "socket.accept() out of system resource"


def under_journald(environ: Mapping[str, str] | None = None, stream: TextIO | None = None) -> bool:
    """True when the log stream goes to journald ($JOURNAL_STREAM names its device:inode).

    A child process inherits the variable with another stderr: the check of the device
    and inode keeps its logs (e.g. redirected to a file) in the plain format.
    """
    env = os.environ if environ is None else environ
    expected = env.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return True  # not a file (a test's buffer): trust the variable
    return expected == f"{st.st_dev}:{st.st_ino}"


def setup_logging(
    level: str = "info",
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> SecretFilter:
    """Route every logger to stderr in the right format; returns the secret filter to extend."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    journal = under_journald(environ, stream)
    handler.setFormatter(JournalFormatter() if journal else logging.Formatter(PLAIN_FORMAT))
    secret_filter = SecretFilter(secrets)
    handler.addFilter(secret_filter)
    handler.addFilter(QuietSchedulers())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that are chatty at INFO: their news is in our own messages.
    for name in ("alembic", "apscheduler", "uvicorn.error", "uvicorn.access", "httpx"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # pymodbus logs every refused connection at ERROR; the Modbus adapter reports each
    # failure itself, once, with the device's id.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio_log = logging.getLogger("asyncio")
    for old_filter in [f for f in asyncio_log.filters if isinstance(f, RateLimited)]:
        asyncio_log.removeFilter(old_filter)
    asyncio_log.addFilter(RateLimited([ACCEPT_EXHAUSTED]))
    return secret_filter
