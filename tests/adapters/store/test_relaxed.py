"""Relaxed position commits: serialized and atomic, not waiting for the disk, connection given back."""

from __future__ import annotations

import gc
import threading
import time

from heliod.adapters.store import Store
from heliod.adapters.store.relaxed import RelaxedPositions


def test_positions_commit_and_other_writers_stay_durable(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        positions = RelaxedPositions(store)
        positions.set("exporter", 42, 1)
        positions.set("exporter", 43, 2)
        positions.set("exporter_mints", 7, 3)
        assert store.position("exporter") == 43
        assert store.position("exporter_mints") == 7
        if store.dialect == "sqlite":
            assert positions._kept.get().execute("PRAGMA synchronous").fetchone() == (1,)
            with store.write() as conn:  # every other writer still waits for the disk
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        positions.close()
        gc.collect()
        pool = store.engine.pool
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        if store.dialect == "sqlite":
            # The connection went back to the pool as every writer expects it: FULL.
            held = [store.engine.raw_connection() for _ in range(pool.checkedin())]  # type: ignore[attr-defined]
            assert [c.driver_connection.execute("PRAGMA synchronous").fetchone() for c in held] == [
                (2,)
            ] * len(held)
            for c in held:
                c.close()
        positions.set("exporter", 44, 4)  # reopened on use
        assert store.position("exporter") == 44
        positions.close()
    finally:
        store.close()


def test_a_position_waits_for_the_writer_in_progress(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        positions = RelaxedPositions(store)
        positions.set("exporter", 1, 1)
        started = threading.Event()

        def hold_the_write_lock() -> None:
            with store.write() as conn:
                conn.exec_driver_sql("UPDATE positions SET updated_us = 9")
                started.set()
                time.sleep(0.5)

        holder = threading.Thread(target=hold_the_write_lock)
        holder.start()
        started.wait(5)
        t0 = time.monotonic()
        positions.set("exporter", 2, 2)  # serialized after the other writer, not an error
        assert time.monotonic() - t0 > 0.3
        holder.join()
        assert store.position("exporter") == 2
        positions.close()
    finally:
        store.close()
