"""The share register pulled from the platform's `backers_url`, hourly and at start.

The answer `{"backers": [{"backer", "amount", "valid_from"}]}` carries the same rows as the
CSV of `backers import` (docs/platform.md, "Share register"), and goes through the same
rules (rewards/register_rows.py) and the same idempotent insert (`apply_rows`): polling
an unchanged register adds nothing. An
answer that is not signed by the platform (checked by the adapter, over its raw body),
is larger than 32 MiB, is not exactly that shape, has an empty list or a single
malformed row is refused whole and reported (the log, `/healthz`), never applied. A
backer missing from an answer keeps the weight already stored: rows are effective-dated,
so only an explicit `amount` of 0 ends a share, and a truncated answer cannot shrink the
register.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from decimal import Decimal
from typing import Any, Protocol

from heliod.adapters.clock import system_now_us
from heliod.adapters.errors import RetryableError
from heliod.adapters.platform import InvalidAnswer, Stopping
from heliod.adapters.store import Store
from heliod.adapters.store.shares import RegisterRefused, apply_rows
from heliod.rewards.register_rows import InputError, RegisterRow, RowText, register_rows
from heliod.rewards.times import rfc3339

log = logging.getLogger("heliod.register_sync")

INTERVAL_S = 3600.0  # docs/platform.md: polled hourly (and at start)
RETRY_S = 300.0  # after a network failure: sooner than an hour, not a hammering


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
        # str, not format "f": 1E+999999999 stays 12 characters (refused by the row rules)
        # instead of a billion digits.
        return str(Decimal(value))
    return None


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
    texts: list[RowText] = []
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
        # Stripped as CSV cells are: the same row means the same in both forms.
        values = {
            "backer": str(backer or "").strip(),
            "amount": (amount or "").strip(),
            "valid_from": str(valid_from or "").strip(),
        }
        texts.append(RowText(at, f"row [{i}]", values))
    if problems:
        raise AnswerRefused(problems[:20])
    try:
        return register_rows(texts, tz)
    except InputError as exc:
        raise AnswerRefused(exc.problems) from None


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
    refusal: str | None = None  # why the last answer was refused, until one is applied
    in_row: int = 0  # failed pulls since the last good one (/healthz `jobs`)


@dataclass(frozen=True, slots=True)
class SyncedPlant:
    """A plant whose register is pulled: its id and the timezone of offset-less times."""

    id: str
    tz: tzinfo


@dataclass
class RegisterSync:
    """Polls each plant's register when due and applies a valid answer."""

    store: Store
    fetcher: Fetcher
    plants: Sequence[SyncedPlant]
    clock_us: Callable[[], int] = system_now_us
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
        state.in_row += 1  # until it succeeds
        try:
            body = self.fetcher.fetch_backers(plant.id)
            rows = parse_answer(body, plant.tz, where=f"{plant.id}: backers")
            with self.store.write() as conn:
                result = apply_rows(conn, plant.id, rows, self.clock_us())
        except Stopping:  # abandoned by a stop: pulled again at the next start
            return False
        except RetryableError as exc:
            state.next_us = now + int(min(self.retry_s, self.interval_s) * 1e6)
            state.last_error = f"platform unavailable: {exc}"
            log.warning("register of %s not fetched: %s", plant.id, exc)
            return False
        except (InvalidAnswer, AnswerRefused, RegisterRefused) as exc:
            state.refused += 1
            state.refusal = "; ".join(exc.problems[:5])
            state.last_error = "answer refused: " + state.refusal
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
        state.last_success_us, state.last_error, state.refusal = now, None, None
        state.in_row = 0
        state.rows, state.added = len(rows), result.added
        if result.added:
            log.info(
                "register of %s: %d rows from the platform, %d new",
                plant.id,
                len(rows),
                result.added,
            )
        return True

    def streak(self) -> dict[str, Any]:
        """The job's failures in a row: the worst plant's, with its last error (/healthz)."""
        worst = max(self.state.values(), key=lambda s: s.in_row, default=None)
        if worst is None:
            return {"failures": 0, "last_error": None}
        return {"failures": worst.in_row, "last_error": worst.last_error}

    def status(self) -> dict[str, dict[str, Any]]:
        """Per plant: last attempt, last success, last error, rows seen and added, refusals."""
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
                "refusal": s.refusal,
            }
            for plant, s in sorted(self.state.items())
        }
