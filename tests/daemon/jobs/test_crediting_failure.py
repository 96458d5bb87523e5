"""A mint whose credit rows fail to write while its log entry is hashed beside them
(daemon/jobs/crediting.py): the batch rolls back, no thread is left running, and the
batch retried writes every row as a run that never failed."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from heliod.adapters.signing import SigningKey
from heliod.adapters.store import Store, credits_repo
from heliod.daemon.jobs import crediting
from heliod.daemon.jobs.accountant import Accountant, PlantBook
from heliod.daemon.jobs.ledger_log import LogSigner
from heliod.rewards.energy import Bound
from heliod.rewards.ledger import PlantRules
from heliod.rewards.register import BEGINNING_US
from tests.daemon.jobs.test_crediting import MINUTE_US, T0_US, stored_rows

FAIL = (
    "CREATE TRIGGER fail BEFORE INSERT ON credits WHEN NEW.backer = 'b0150' "
    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
)


def _run(url: str, key: SigningKey, *, fail: bool) -> dict[str, list[tuple[str, ...]]]:
    store = Store.open(url)
    with store.write() as conn:
        conn.execute(
            text(
                "INSERT INTO shares (plant, backer, weight, valid_from_us, stored_us) "
                "VALUES ('p', :b, :w, :t, 0)"
            ),
            [{"b": f"b{i:04d}", "w": f"{1 + i % 9}", "t": BEGINNING_US} for i in range(300)],
        )
        conn.execute(
            text(
                "INSERT INTO readings (device, ts_us, energy_mwh, received_us) "
                "VALUES ('inv', :t, :e, 0)"
            ),
            [
                {"t": T0_US + i * MINUTE_US, "e": e}
                for i, e in enumerate([0, 1, 1_000_000_002, 2_000_000_003])
            ],
        )
        if fail:
            conn.exec_driver_sql(FAIL)
    book = PlantBook(
        PlantRules("p", Bound.of(Decimal(100_000), Decimal("1.2")), frozenset(["inv"]), None),
        10**8,
        "SLR",
        8,
    )
    acc = Accountant(store, [book], lambda: T0_US, log=LogSigner("test.example/heliod", key))
    if fail:
        before = threading.active_count()
        with pytest.raises(Exception, match="disk is full"):
            acc.batch()
        assert threading.active_count() == before
        with store.write() as conn:
            conn.exec_driver_sql("DROP TRIGGER fail")
    acc.batch()
    found = stored_rows(store)
    store.close()
    return found


def test_a_failed_write_beside_the_hashing_is_retried_as_if_never_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey.generate()
    clean = _run(f"sqlite:///{tmp_path / 'clean.db'}", key, fail=False)
    monkeypatch.setattr(crediting, "HASH_ASIDE_FROM", 0)
    monkeypatch.setattr(credits_repo, "_ROWS_PER_STATEMENT", 64)
    retried = _run(f"sqlite:///{tmp_path / 'retried.db'}", key, fail=True)
    assert len(clean["mints"]) >= 1
    assert retried == clean
