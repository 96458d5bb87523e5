"""The retention job against a gateway clock that jumps years ahead (docs/storage.md,
"Retention"): it must not prune the readings of the last `raw_retention` because the
clock says ten years have passed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.ledger_repo import max_reading_id
from heliod.daemon.jobs.retention import Retention
from heliod.rewards.readings import Reading

S = 1_000_000
DAY = 86_400 * S
NOW = int(datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()) * S
KEEP = 90 * DAY


class Clock:
    def __init__(self, now_us: int) -> None:
        self.now_us = now_us

    def __call__(self) -> int:
        return self.now_us


class Monotonic:
    """Real time passing, in µs, moved by the test."""

    def __init__(self) -> None:
        self.us = 0

    def __call__(self) -> int:
        return self.us


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")


def fill_days(store: Store, first_day: int, last_day: int) -> None:
    """One reading a day, days relative to NOW, each stored on its own day; all accounted."""
    for d in range(first_day, last_day + 1):
        at = NOW + d * DAY
        store.ingest(
            [Reading("m1", datetime.fromtimestamp(at / S, UTC), {"energy_wh": Decimal(d + 400)})],
            at,
        )
    with store.read() as conn:
        newest = max_reading_id(conn)
    store.set_position("accountant", newest, NOW)


def days_kept(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.readings)).scalar_one())


def test_a_clock_years_ahead_does_not_prune_recent_readings(store: Store) -> None:
    fill_days(store, -199, 0)  # 200 days, the newest today
    clock, mono = Clock(NOW), Monotonic()
    Retention(store, clock, KEEP, exporting=False, monotonic_us=mono).run()
    assert days_kept(store) == 91  # the last 90 days and today
    # The daemon restarts ten years ahead: the clock says every reading is old.
    clock.now_us = NOW + 3650 * DAY
    retention = Retention(store, clock, KEEP, exporting=False, monotonic_us=mono)
    retention.run()
    assert days_kept(store) >= 90  # at most the day it allows for the time it was stopped
    mono.us += 10 * DAY  # ten real days later, still ahead
    retention.run()
    assert days_kept(store) >= 70  # pruned as of at most twice the real time elapsed


def test_without_a_past_pass_the_newest_stored_reading_bounds_the_clock(store: Store) -> None:
    # A store retention never ran on (or from before this guard): the newest reading's
    # arrival time stands for the time the daemon last ran.
    fill_days(store, -199, 0)
    clock = Clock(NOW + 3650 * DAY)
    Retention(store, clock, KEEP, exporting=False, monotonic_us=Monotonic()).run()
    assert days_kept(store) >= 90


def test_a_right_clock_prunes_as_before(store: Store) -> None:
    fill_days(store, -199, 0)
    clock, mono = Clock(NOW), Monotonic()
    retention = Retention(store, clock, KEEP, exporting=False, monotonic_us=mono)
    retention.run()
    assert days_kept(store) == 91
    fill_days(store, 1, 30)
    clock.now_us += 30 * DAY
    mono.us += 30 * DAY
    retention.run()
    assert days_kept(store) == 91
