"""The export outbox: readings rendered as line protocol when stored, sent without
formatting them again, mixed with readings stored while the export was off."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from heliod.adapters.influx.lines import reading_lines, reading_prefix
from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.export_source import ReadingSource
from heliod.adapters.store.relaxed import trim_outbox
from heliod.adapters.store.store import ExportLines
from heliod.rewards.readings import Reading

PLANTS = {"inv1": "p1", "inv2": "p,2", "meter 3": "p1"}
PREFIXES = {d: reading_prefix(p, d) for d, p in PLANTS.items()}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW_US = int((T0 + timedelta(days=1)).timestamp() * 1e6)  # the gateway clock: after every reading


def lines_of(max_points: int) -> ExportLines:
    return ExportLines(partial(reading_lines, prefixes=PREFIXES), max_points)


def stored_rows(store: Store, after: int = 0, last: int = 2**62) -> list[tuple]:  # type: ignore[type-arg]
    r = t.readings.c
    with store.read() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(r.id, r.device, r.ts_us, r.energy_mwh, r.power_mw, r.extra)
                .where(r.id > after, r.id <= last)
                .order_by(r.id)
            )
        ]


def all_batches(source: ReadingSource) -> list[tuple[int, int, int, int, bytes]]:
    out, after = [], 0
    while (batch := source.batch_after(after)).rows:
        assert batch.after == after and batch.last_id > after
        out.append((batch.after, batch.last_id, batch.rows, batch.points, batch.body))
        after = batch.last_id
    return out


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")
    yield s
    s.close()


field_sets = st.fixed_dictionaries(
    {},
    optional={
        "energy_wh": st.integers(0, 10**12).map(lambda m: Decimal(m) / 1000),
        "power_w": st.integers(-(10**9), 10**9).map(lambda m: Decimal(m) / 1000),
        "temp_c": st.decimals(-50, 90, places=3, allow_nan=False),
        "odd key": st.sampled_from([Decimal(5), Decimal("-0.5")]),
    },
)
calls = st.lists(
    st.tuples(
        st.booleans(),  # export on while this group is stored
        st.lists(st.tuples(st.sampled_from(["inv1", "inv2", "meter 3", "gone"]), field_sets)),
    ),
    max_size=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=calls, max_points=st.integers(1, 9), batch_size=st.integers(1, 16))
def test_batches_are_the_reference_lines_of_their_readings(
    tmp_path_factory: pytest.TempPathFactory,
    calls: list[tuple[bool, list[tuple[str, dict[str, Decimal]]]]],
    max_points: int,
    batch_size: int,
) -> None:
    """Whatever mix of outbox rows and readings formatted later, each batch is exactly the
    line protocol of the readings it covers, batches follow each other without gap or
    overlap up to the newest reading, and none holds more than batch_size readings, even
    from outbox rows stored with a larger batch_size."""
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('outbox') / 'heliod.db'}")
    try:
        at = T0
        for exporting, readings in calls:
            store.export_lines = lines_of(max_points) if exporting else None
            batch = []
            for device, fields in readings:
                at += timedelta(seconds=1)
                batch.append(Reading(device, at, fields))
            store.ingest(batch, int((at + timedelta(seconds=1)).timestamp() * 1e6))
        source = ReadingSource(store, PLANTS, batch_size)
        batches = all_batches(source)
        source.close()
        rows = stored_rows(store)
        assert (batches[-1][1] if batches else 0) == (rows[-1][0] if rows else 0)
        for after, last, n, points, body in batches:
            covered = stored_rows(store, after, last)
            assert n == len(covered)
            assert body == reading_lines(covered, PREFIXES)
            assert points == (body.count(b"\n") + 1 if body else 0)
            assert n <= batch_size  # whatever the batch_size the rows were stored with
    finally:
        store.close()


def test_an_outbox_batch_is_sent_as_rendered_when_stored(store: Store) -> None:
    """The bodies come from the outbox, not from the readings (changed here behind its
    back to tell the two apart), and readings stored while the export was off are
    formatted from the table, in order."""
    store.ingest([Reading("inv1", T0, {"energy_wh": Decimal(1)})], NOW_US)  # export off
    store.export_lines = lines_of(2)
    store.ingest(
        [Reading("inv1", T0 + timedelta(seconds=s), {"energy_wh": Decimal(s)}) for s in (1, 2, 3)],
        NOW_US,
    )
    with store.write() as conn:
        conn.execute(update(t.readings).values(energy_mwh=999_000))
    batches = all_batches(ReadingSource(store, PLANTS, 5))
    ts = [int((T0 + timedelta(seconds=s)).timestamp() * 1e6) for s in range(4)]
    assert [b[:4] for b in batches] == [(0, 1, 1, 1), (1, 4, 3, 3)]
    assert batches[0][4] == f"reading,device=inv1,plant=p1 energy_wh=999.000 {ts[0]}".encode()
    assert batches[1][4].decode().splitlines() == [
        f"reading,device=inv1,plant=p1 energy_wh={s}.000 {ts[s]}" for s in (1, 2, 3)
    ]


def test_a_large_ingest_is_split_into_rows_of_max_points(store: Store) -> None:
    store.export_lines = lines_of(4)
    store.ingest(
        [Reading("inv2", T0 + timedelta(seconds=s), {"power_w": Decimal(s)}) for s in range(10)],
        NOW_US,
    )
    o = t.export_outbox.c
    with store.read() as conn:
        runs = conn.execute(select(o.after_id, o.last_id, o.readings, o.points)).all()
    assert [tuple(r) for r in runs] == [(0, 4, 4, 4), (4, 8, 4, 4), (8, 10, 2, 2)]
    assert [b[:4] for b in all_batches(ReadingSource(store, PLANTS, 9))] == [
        (0, 8, 8, 8),
        (8, 10, 2, 2),
    ]


def test_readings_without_fields_and_gaps_before_the_outbox(store: Store) -> None:
    """Ids deleted before the first outbox row (nothing left to format) and readings with
    no field (no line) do not stall the export."""
    store.ingest(
        [Reading("inv1", T0 + timedelta(seconds=s), {"energy_wh": Decimal(s)}) for s in range(3)],
        NOW_US,
    )  # ids 1-3, export off
    store.export_lines = lines_of(3)
    store.ingest(
        [
            Reading("inv1", T0 + timedelta(seconds=3), {}),
            Reading("inv1", T0 + timedelta(seconds=4), {"energy_wh": Decimal(4)}),
        ],
        NOW_US,
    )  # ids 4-5, one outbox row
    with store.write() as conn:  # ids 2 and 3 gone (PostgreSQL sequences leave such gaps)
        conn.execute(delete(t.readings).where(t.readings.c.id.in_([2, 3])))
    batches = all_batches(ReadingSource(store, PLANTS, 10))
    # id 1 formatted (the window stops before the outbox row), then the row: nothing is
    # left to format between them.
    assert [b[:4] for b in batches] == [(0, 1, 1, 1), (1, 5, 2, 1)]


def test_rows_the_position_passed_are_deleted_in_steps(store: Store) -> None:
    store.export_lines = lines_of(2)
    store.ingest(
        [Reading("inv1", T0 + timedelta(seconds=s), {"energy_wh": Decimal(s)}) for s in range(9)],
        NOW_US,
    )  # rows ending at ids 2, 4, 6, 8, 9
    assert trim_outbox(store, 7, limit=2) == 2  # the oldest two
    assert outbox_ids(store) == [6, 8, 9]
    assert trim_outbox(store, 7, limit=2) == 1  # 8 holds reading 8, not yet passed
    assert trim_outbox(store, 7, limit=2) == 0
    assert outbox_ids(store) == [8, 9]
    assert [b[:4] for b in all_batches(ReadingSource(store, PLANTS, 10))][-1] == (6, 9, 3, 3)
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.readings)).scalar() == 9


def outbox_ids(store: Store) -> list[int]:
    with store.read() as conn:
        return list(conn.execute(select(t.export_outbox.c.last_id)).scalars())


def test_postgresql_outbox_batches_equal_the_reference(pg_url: str) -> None:
    store = Store.open(pg_url)
    try:
        store.ingest([Reading("meter 3", T0, {"energy_wh": Decimal("7.5")})], NOW_US)
        store.export_lines = lines_of(2)
        store.ingest(
            [
                Reading("inv2", T0 + timedelta(seconds=s), {"power_w": Decimal(-s)})
                for s in range(1, 6)
            ],
            NOW_US,
        )
        expected = reading_lines(stored_rows(store), PREFIXES).split(b"\n")
        with store.write() as conn:  # the outbox rows, not the readings, must be sent
            conn.execute(update(t.readings).where(t.readings.c.id > 1).values(power_mw=7))
        batches = all_batches(ReadingSource(store, PLANTS, 4))
        assert [b[:4] for b in batches] == [(0, 1, 1, 1), (1, 5, 4, 4), (5, 6, 1, 1)]
        assert b"\n".join(b[4] for b in batches).split(b"\n") == expected
        assert trim_outbox(store, 6, limit=10) == 3
        assert outbox_ids(store) == []
    finally:
        store.close()


def test_a_position_inside_an_outbox_row(store: Store) -> None:
    """Positions land on row boundaries, but one inside a row (set by hand) still works:
    the rest of the row's readings are formatted, or the row is skipped when none is left."""
    store.export_lines = lines_of(4)
    store.ingest(
        [Reading("inv1", T0 + timedelta(seconds=s), {"energy_wh": Decimal(s)}) for s in range(8)],
        NOW_US,
    )  # rows (0, 4] and (4, 8]
    source = ReadingSource(store, PLANTS, 10)
    first = source.batch_after(2)
    assert (first.after, first.last_id, first.rows, first.more) == (2, 4, 2, True)
    assert first.body == reading_lines(stored_rows(store, 2, 4), PREFIXES)
    with store.write() as conn:
        conn.execute(delete(t.readings).where(t.readings.c.id.in_([3, 4])))
    skipped = source.batch_after(2)  # nothing left of (0, 4]: on with (4, 8]
    assert (skipped.after, skipped.last_id, skipped.rows) == (2, 8, 4)
    assert skipped.body == reading_lines(stored_rows(store, 4, 8), PREFIXES)
    source.close()


def test_rows_stored_with_a_larger_batch_size_are_split(store: Store) -> None:
    store.export_lines = lines_of(10)
    store.ingest(
        [Reading("inv2", T0 + timedelta(seconds=s), {"power_w": Decimal(s)}) for s in range(10)],
        NOW_US,
    )
    batches = all_batches(ReadingSource(store, PLANTS, 4))
    assert [b[:4] for b in batches] == [(0, 4, 4, 4), (4, 8, 4, 4), (8, 10, 2, 2)]
    assert b"\n".join(b[4] for b in batches) == reading_lines(stored_rows(store), PREFIXES)


def test_trimming_gives_way_to_newer_readings(store: Store) -> None:
    """Deleting sent rows waits while readings after the position wait to be sent."""
    from heliod.daemon.jobs.export.loop import Exporter

    class Accepting:
        def write(self, body: bytes) -> None:
            pass

    store.export_lines = lines_of(2)
    reading = partial(Reading, "inv1")
    store.ingest(
        [reading(T0 + timedelta(seconds=s), {"energy_wh": Decimal(s)}) for s in range(4)], NOW_US
    )
    exporter = Exporter(store, Accepting(), PLANTS, lambda: NOW_US, batch_size=10)
    assert exporter.drain() == 4
    store.ingest([reading(T0 + timedelta(seconds=9), {"energy_wh": Decimal(9)})], NOW_US)
    assert exporter.trim() == 0  # reading 5 goes first
    assert outbox_ids(store) == [2, 4, 5]
    assert exporter.drain() == 1
    assert exporter.trim() == 3
    assert outbox_ids(store) == []
    exporter.stop()
