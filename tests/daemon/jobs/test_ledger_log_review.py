"""Review findings on the log in the accountant's transaction (docs/verification.md)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from heliod.daemon.boot.settings import log_signer, plant_books
from heliod.daemon.jobs.accountant import Accountant
from tests.daemon.jobs.test_ledger_log import counts, verified
from tests.daemon.ledger_fixture import DEVICES, STEP_WH, Ledger, make_ledger, now_us


def _readings(ledger: Ledger, plant: str, mwh: int) -> None:
    device = DEVICES[plant]
    rows = [] if device in ledger.counters else [ledger._next(device, Decimal(0))]
    rows += [ledger._next(device, STEP_WH) for _ in range(4 * mwh)]
    rows.append(ledger._next(device, Decimal(0)))
    ledger.store.ingest(rows, now_us())


def test_a_mint_by_another_accountant_does_not_stop_this_one(tmp_path: Path) -> None:
    """`heliod account` while `heliod run` runs (docs/cli.md: safe, the store serializes
    them): the daemon's accountant goes on from the log the other one grew, at its next
    batch, without a failed batch and without a leaf missing or doubled."""
    ledger = make_ledger(tmp_path)
    books = plant_books(ledger.config)
    daemon = Accountant(ledger.store, books, now_us, log=log_signer(ledger.config))
    _readings(ledger, "alpha", 1)
    assert daemon.run().mints == [("alpha", 1)]
    _readings(ledger, "alpha", 1)
    other = Accountant(ledger.store, books, now_us, log=log_signer(ledger.config))
    assert other.run().mints == [("alpha", 2)]
    _readings(ledger, "alpha", 1)
    assert daemon.run().mints == [("alpha", 3)]
    assert counts(ledger) == (3, 3, 3, 3)
    assert verified(ledger) == []
