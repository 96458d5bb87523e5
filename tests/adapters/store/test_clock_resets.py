"""Clock reset decisions in the store (docs/accounting.md, "Clocks"): the V a decision
records is the one the operator was shown, and it comes from the episode it covers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.clocks import device_clock, record_clock_reset
from heliod.rewards.clocks import Seen
from heliod.rewards.readings import Reading

S = 1_000_000
NOW = int(datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()) * S
AHEAD = NOW + 3650 * 86_400 * S
WH = 1000  # mWh


def reading(at_us: int, wh: int) -> Reading:
    return Reading("m1", datetime.fromtimestamp(at_us / S, UTC), {"energy_wh": Decimal(wh)})


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")


def test_the_decision_records_the_v_the_operator_was_shown(store: Store) -> None:
    store.ingest([reading(AHEAD, 1000), reading(AHEAD + 60 * S, 2000)], AHEAD + 60 * S)
    store.ingest([reading(NOW, 3000)], NOW)  # rejected: not after the last
    with store.read() as conn:
        shown = device_clock(conn, "m1")
    assert shown.seen == Seen(3000 * WH, NOW)
    # Another reading is rejected while the operator reads and answers.
    store.ingest([reading(NOW + 60 * S, 9_000_000)], NOW + 60 * S)
    with store.write() as conn:
        reset = record_clock_reset(conn, shown, NOW + 90 * S)
    assert reset.seen == shown.seen
    with store.read() as conn:
        c = t.clock_resets.c
        stored = conn.execute(select(c.seen_mwh, c.seen_at_us)).one()
    assert tuple(stored) == (3000 * WH, NOW)


def test_a_decision_takes_v_only_from_its_own_episode(store: Store) -> None:
    # Episode 1: ahead, then rejected, then reset.
    store.ingest([reading(AHEAD, 1000), reading(AHEAD + 60 * S, 2000)], AHEAD + 60 * S)
    store.ingest([reading(NOW, 3000)], NOW)
    with store.write() as conn:
        first = record_clock_reset(conn, device_clock(conn, "m1"), NOW + 30 * S)
    assert first.seen == Seen(3000 * WH, NOW)
    # Episode 2: the clock jumps ahead again; the reset comes before any rejection.
    later = NOW + 86_400 * S
    store.ingest([reading(later, 4000)], later)
    store.ingest([reading(AHEAD * 2, 5000)], AHEAD * 2)
    with store.read() as conn:
        clock = device_clock(conn, "m1")
    assert clock.seen is None  # episode 1's reading is no reading of this one
    store.ingest([reading(later + 60 * S, 6000)], later + 60 * S)  # rejected now
    with store.read() as conn:
        assert device_clock(conn, "m1").seen == Seen(6000 * WH, later + 60 * S)
