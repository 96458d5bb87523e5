"""The share register pulled from the platform's `backers_url` (CONTRACT §6), hourly and at start.

The answer `{"backers": [{"backer", "amount", "valid_from"}]}` carries the same rows as the
CSV of `backers import`, and goes through the same validation (`parse_register`) and the
same idempotent insert (`apply_rows`): polling an unchanged register adds nothing. An
answer that is not exactly that shape, an empty list, or a single malformed row is
refused whole and reported, never applied. A backer missing from an answer keeps the
weight already stored: rows are effective-dated, so only an explicit `amount` of 0 ends
a share, and a truncated answer cannot shrink the register.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from decimal import Decimal
from typing import Any, Protocol

from heliod.adapters.errors import RetryableError
from heliod.adapters.store import Store
from heliod.adapters.store.shares import RegisterRefused, apply_rows
from heliod.daemon.config import Config
from heliod.daemon.inputs import InputError, RegisterRow, parse_register
from heliod.rewards.times import rfc3339

log = logging.getLogger("heliod.register_sync")

INTERVAL_S = 3600.0  # §6: polled hourly (and at start)
RETRY_S = 300.0  # after a network failure: sooner than an hour, not a hammering
_LINE = re.compile(r": line (\d+):")
_ON_LINE = re.compile(r" on line (\d+)")


class Fetcher(Protocol):
    """GETs a plant's register from the platform (PlatformClient fits)."""

    def fetch_backers(self, plant: str) -> bytes:
        """The raw answer body; raises RetryableError or PermanentError."""
        ...


class AnswerRefused(Exception):
    """The platform's answer is not a register heliod will apply; one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _text(value: Any) -> str | None:
    """A JSON value as CSV text: strings as they are, numbers exactly, else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return format(Decimal(value), "f")
    return None


def _row_numbers(problem: str) -> str:
    """parse_register's CSV line numbers as indexes into the JSON list (line i+2 = row i)."""
    problem = _LINE.sub(lambda m: f"[{int(m[1]) - 2}]:", problem)
    return _ON_LINE.sub(lambda m: f" in row [{int(m[1]) - 2}]", problem)


def parse_answer(body: bytes, tz: tzinfo, where: str = "backers") -> list[RegisterRow]:
    """The register rows of a backers_url answer, all valid and at least one, or AnswerRefused."""
    try:
        doc = json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AnswerRefused([f"{where}: not JSON: {exc}"]) from None
    rows = doc.get("backers") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise AnswerRefused([f'{where}: expected {{"backers": [...]}}'])
    if not rows:
        raise AnswerRefused([f"{where}: empty list: refused, it would apply no register at all"])
    problems: list[str] = []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["backer", "amount", "valid_from"])
    for i, row in enumerate(rows):
        at = f"{where}[{i}]"
        if not isinstance(row, dict):
            problems.append(f"{at}: expected an object with backer, amount and valid_from")
            continue
        backer, amount = row.get("backer"), _text(row.get("amount"))
        valid_from = row.get("valid_from")
        if not isinstance(backer, str) or not backer:
            problems.append(f"{at}: backer: expected a non-empty string, got {backer!r}")
        if amount is None:
            problems.append(f"{at}: amount: expected a decimal string or number")
        if valid_from is not None and not isinstance(valid_from, str):
            problems.append(f"{at}: valid_from: expected an RFC 3339 string or null")
        writer.writerow([backer, amount, valid_from or ""])
    if problems:
        raise AnswerRefused(problems[:20])
    try:
        parsed = parse_register(out.getvalue(), tz, name=where)
    except InputError as exc:
        raise AnswerRefused([_row_numbers(p) for p in exc.problems]) from None
    if len(parsed) != len(rows):  # every row is non-blank, so none may vanish
        raise AnswerRefused([f"{where}: {len(rows)} rows sent, {len(parsed)} understood"])
    return parsed


@dataclass
class PlantSync:
    """How the last polls of one plant went."""

    next_us: int = 0
    last_attempt_us: int | None = None
    last_success_us: int | None = None
    last_error: str | None = None
    rows: int = 0
    added: int = 0
    refused: int = 0  # answers refused since start


@dataclass(frozen=True, slots=True)
class SyncedPlant:
    """A plant whose register is pulled: its id and the timezone of offset-less times."""

    id: str
    tz: tzinfo


def _system_clock_us() -> int:
    return time.time_ns() // 1000


@dataclass
class RegisterSync:
    """Polls each plant's register when due and applies a valid answer."""

    store: Store
    fetcher: Fetcher
    plants: Sequence[SyncedPlant]
    clock_us: Callable[[], int] = _system_clock_us
    interval_s: float = INTERVAL_S
    retry_s: float = RETRY_S
    state: dict[str, PlantSync] = field(default_factory=dict)

    def sync_due(self) -> None:
        """Poll every plant that is due (all of them at the first call)."""
        for plant in self.plants:
            state = self.state.setdefault(plant.id, PlantSync())
            if self.clock_us() >= state.next_us:
                self.sync_plant(plant)

    def sync_plant(self, plant: SyncedPlant) -> bool:
        """Fetch, validate and apply one plant's register now; True when applied."""
        state = self.state.setdefault(plant.id, PlantSync())
        now = self.clock_us()
        state.last_attempt_us = now
        state.next_us = now + int(self.interval_s * 1e6)
        try:
            body = self.fetcher.fetch_backers(plant.id)
            rows = parse_answer(body, plant.tz, where=f"{plant.id}: backers")
            with self.store.write() as conn:
                result = apply_rows(conn, plant.id, rows, self.clock_us())
        except RetryableError as exc:
            state.next_us = now + int(min(self.retry_s, self.interval_s) * 1e6)
            state.last_error = f"platform unavailable: {exc}"
            log.warning("register of %s not fetched: %s", plant.id, exc)
            return False
        except (AnswerRefused, RegisterRefused) as exc:
            state.refused += 1
            state.last_error = "answer refused: " + "; ".join(exc.problems[:5])
            log.error(
                "register of %s from the platform refused, nothing applied:\n%s",
                plant.id,
                "\n".join(exc.problems),
            )
            return False
        except Exception as exc:  # PermanentError (4xx) and anything unforeseen
            state.last_error = f"{type(exc).__name__}: {exc}"
            log.error("register of %s not fetched: %s", plant.id, state.last_error)
            return False
        state.last_success_us, state.last_error = now, None
        state.rows, state.added = len(rows), result.added
        if result.added:
            log.info(
                "register of %s: %d rows from the platform, %d new",
                plant.id,
                len(rows),
                result.added,
            )
        return True

    def status(self) -> dict[str, dict[str, Any]]:
        """Per plant: last attempt, last success, last error, rows seen and added."""
        return {
            plant: {
                "last_attempt_at": None
                if s.last_attempt_us is None
                else rfc3339(s.last_attempt_us),
                "last_success_at": None
                if s.last_success_us is None
                else rfc3339(s.last_success_us),
                "last_error": s.last_error,
                "rows": s.rows,
                "added": s.added,
                "refused": s.refused,
            }
            for plant, s in sorted(self.state.items())
        }


def register_sync(store: Store, config: Config, fetcher: Fetcher) -> RegisterSync | None:
    """The register sync of every configured plant; None without a backers_url."""
    if config.platform is None or not config.platform.backers_url:
        return None
    return RegisterSync(store, fetcher, [SyncedPlant(p.id, p.tz) for p in config.plants])
