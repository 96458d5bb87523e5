"""The store on SQLite and PostgreSQL: durability settings, integrity, exact numbers, the readings gate."""

from __future__ import annotations

import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from heliod.adapters.store import Store, StoreError
from heliod.adapters.store import schema as t
from heliod.adapters.store.engine import make_engine
from heliod.adapters.store.migrate import HEAD, current_revision
from heliod.rewards.readings import Reading
from heliod.rewards.times import to_us

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_sqlite_is_wal_with_full_sync(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'h.db'}")
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        # A small page cache per pooled connection (docs/performance.md, daemon memory).
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -512
    store.close()


def test_a_new_database_and_its_folder_are_private(tmp_path: Path) -> None:
    """Outside systemd nothing else makes them so: 0700 folder, 0600 database, WAL, SHM."""
    folder = tmp_path / "state"
    umask = os.umask(0o022)  # the usual default, which SQLite would apply to 0644
    try:
        store = Store.open(f"sqlite:///{folder / 'h.db'}")
        store.set_position("probe", 1, 0)  # a write: the -wal and -shm files exist now
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
        store.close()
    finally:
        os.umask(umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert modes == {"h.db": 0o600, "h.db-wal": 0o600, "h.db-shm": 0o600}


def test_damaged_file_is_refused_with_restore_advice(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = Store.open(f"sqlite:///{path}")
    now = to_us(NOW)
    store.ingest(
        [
            Reading("d", NOW - timedelta(minutes=i), {"energy_wh": Decimal(i)})
            for i in range(2000, 0, -1)
        ],
        now,
    )
    store.close()
    raw = bytearray(path.read_bytes())
    for offset in range(4096 * 2, len(raw), 4096):  # scribble over every page but the header
        raw[offset + 100 : offset + 400] = b"\xde\xad" * 150
    path.write_bytes(bytes(raw))
    (tmp_path / "h.db-wal").unlink(missing_ok=True)
    with pytest.raises(StoreError) as info:
        Store.open(f"sqlite:///{path}")
    message = str(info.value)
    assert "is damaged" in message
    assert "restore your latest backup" in message and ".recover" in message


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.write_bytes(b"this is not an sqlite file" * 200)
    with pytest.raises(StoreError, match="is damaged"):
        Store.open(f"sqlite:///{path}")


def test_schema_is_migrated_and_kept(db_url: str) -> None:
    store = Store.open(db_url)
    assert current_revision(store.engine) == HEAD
    store.ingest([Reading("d", NOW, {"energy_wh": Decimal("1.5")})], to_us(NOW))
    store.close()
    again = Store.open(db_url)
    with again.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.readings)).scalar() == 1
    again.close()


def test_values_are_exact_and_units_may_exceed_64_bits(db_url: str) -> None:
    store = Store.open(db_url)
    store.ingest(
        [
            Reading(
                "d",
                NOW,
                {
                    "energy_wh": Decimal("999999999999999.999"),
                    "power_w": Decimal("0.001"),
                    "voltage_v": Decimal("230.123"),
                },
            )
        ],
        to_us(NOW),
    )
    big = 10**20 + 7
    with store.write() as conn:
        conn.execute(insert(t.balances).values(plant="p", backer="b", units=big))
    with store.read() as conn:
        row = conn.execute(select(t.readings)).one()
        assert (row.energy_mwh, row.power_mw, row.extra) == (
            999999999999999999,
            1,
            '{"voltage_v":"230.123"}',
        )
        assert conn.execute(select(t.balances.c.units)).scalar() == big
    store.close()


def test_ingest_gate_counts_rejections_per_device(db_url: str) -> None:
    store = Store.open(db_url)
    now = to_us(NOW)
    first = store.ingest(
        [Reading("d", NOW - timedelta(minutes=5), {"energy_wh": Decimal(10)})], now
    )
    assert first.stored == 1
    result = store.ingest(
        [
            Reading("d", NOW - timedelta(minutes=5), {"energy_wh": Decimal(11)}),  # not after
            Reading("d", NOW + timedelta(minutes=5, seconds=1), {"energy_wh": Decimal(12)}),
            Reading("d", NOW, {"energy_wh": Decimal("Infinity")}),
            Reading("d", NOW, {"power_w": Decimal(5)}),  # no energy: kept
            Reading("d", NOW - timedelta(minutes=1), {"energy_wh": Decimal(13)}),
        ],
        now,
    )
    assert result.stored == 2
    assert [r.reason for r in result.rejected] == [
        "timestamp_not_after_last",
        "timestamp_in_future",
        "value_not_finite",
    ]
    with store.read() as conn:
        dev = conn.execute(select(t.devices)).one()
        assert (dev.readings, dev.rejected, dev.last_energy_ts_us) == (
            3,
            3,
            to_us(NOW - timedelta(minutes=1)),
        )
        reasons = conn.execute(select(t.rejected_readings.c.reason)).scalars().all()
        assert len(reasons) == 3
    store.close()


def test_writers_are_serialized_and_ids_commit_in_order(db_url: str) -> None:
    """Two writers at once: every reader that sees id N has also seen every id below N."""
    store = Store.open(db_url)
    stop = threading.Event()
    errors: list[str] = []

    def writer(device: str) -> None:
        for i in range(60):
            store.ingest(
                [Reading(device, NOW + timedelta(seconds=i), {"energy_wh": Decimal(i)})],
                to_us(NOW) + 10**9,
            )

    def reader() -> None:
        while not stop.is_set():
            with store.read() as conn:
                ids = (
                    conn.execute(select(t.readings.c.id).order_by(t.readings.c.id)).scalars().all()
                )
            if ids and ids != list(range(ids[0], ids[0] + len(ids))):
                errors.append(f"gap in {ids[:5]}…")

    threads = [threading.Thread(target=writer, args=(d,)) for d in ("a", "b")]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stop.set()
    watcher.join()
    assert errors == []
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.readings)).scalar() == 120
    store.close()


def test_an_oversized_field_is_rejected_alone_not_its_batch(db_url: str) -> None:
    """A glitching register (an f32 reading 3.4e38) must not block the other readings."""
    store = Store.open(db_url)
    result = store.ingest(
        [
            Reading("inv1", NOW, {"energy_wh": Decimal(5), "power_w": Decimal(100)}),
            Reading("meter1", NOW, {"energy_wh": Decimal(7), "power_w": Decimal("3.4E+38")}),
            Reading("meter1", NOW + timedelta(seconds=1), {"voltage_v": Decimal("-1E+20")}),
        ],
        to_us(NOW) + 10**7,
    )
    assert result.stored == 1
    assert [(r.device, r.reason) for r in result.rejected] == [
        ("meter1", "value_too_large"),
        ("meter1", "value_too_large"),
    ]
    store.close()


def test_processes_opening_a_new_file_together_all_get_wal(tmp_path: Path) -> None:
    """SQLite refuses at once, busy timeout or not, several connections switching a new
    database to WAL together: the daemon and a command started at once on a fresh
    install (one engine each, as in two processes; about one run in six failed here)."""
    for attempt in range(30):
        url = f"sqlite:///{tmp_path / str(attempt) / 'heliod.db'}"
        engines = [make_engine(url) for _ in range(6)]
        barrier = threading.Barrier(len(engines))
        errors: list[BaseException] = []

        def connect(
            engine: Engine,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            try:
                with engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=connect, args=(e,)) for e in engines]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for engine in engines:
            engine.dispose()
        assert errors == []
