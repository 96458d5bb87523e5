"""A mint's verifiable-ledger entry hashed in a thread while its credits are written
(daemon/jobs/crediting.py) is the entry hashed in line: every row the accountant writes
is the same, on SQLite (credit rows a JSON text per slice, beside the hashing) and on
PostgreSQL (row by row, before it)."""

from __future__ import annotations

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

T0_US = 1_483_228_800_000_000  # 2017-01-01T00:00:00Z
MINUTE_US = 60_000_000
BACKERS = 300

TABLES = {  # what the accountant writes, in a fixed order, ids included
    "mints": "plant, mwh_index, completed_at_us, units, register_pos, undistributed_after, "
    "committed_us, event, state_before",
    "credits": "id, plant, mwh_index, backer, units",
    "balances": "plant, backer, units",
    "log_leaves": "*",
    "log_checkpoints": "*",
    "accountant": "*",
}
ORDER = {
    "mints": "plant, mwh_index",
    "credits": "id",
    "balances": "plant, backer",
    "log_leaves": "plant, leaf_index",
    "log_checkpoints": "plant, size",
    "accountant": "id",
}


def _credited(url: str, key: SigningKey) -> dict[str, list[tuple[str, ...]]]:
    """Three MWh credited in two batches to a register that changes between them (new
    backers, a weight to zero), then every row written."""
    store = Store.open(url)
    shares = "INSERT INTO shares (plant, backer, weight, valid_from_us, stored_us) "
    shares += "VALUES ('p', :b, :w, :t, 0)"
    readings = "INSERT INTO readings (device, ts_us, energy_mwh, received_us) "
    readings += "VALUES ('inv', :t, :e, 0)"
    with store.write() as conn:
        rows = [
            {"b": f"b{i:04d}", "w": f"{1 + i % 9}.{i % 7}", "t": BEGINNING_US}
            for i in range(BACKERS)
        ]
        conn.execute(text(shares), rows)
        energy = [0, 1, 1_000_000_002, 2_000_000_003, 2_000_000_004]
        conn.execute(
            text(readings), [{"t": T0_US + i * MINUTE_US, "e": e} for i, e in enumerate(energy)]
        )
    book = PlantBook(
        PlantRules("p", Bound.of(Decimal(100_000), Decimal("1.2")), frozenset(["inv"]), None),
        10**8,
        "SLR",
        8,
    )
    acc = Accountant(
        store, [book], lambda: T0_US, batch_size=100, log=LogSigner("test.example/heliod", key)
    )
    acc.batch()
    late = T0_US + 4 * MINUTE_US
    with store.write() as conn:
        changed = [{"b": f"new{i:03d}", "w": "0.0000001", "t": late} for i in range(40)]
        conn.execute(text(shares), [*changed, {"b": "b0003", "w": "0", "t": late}])
        more = [3_000_000_005 + i * 1_000_000_001 for i in range(2)]
        conn.execute(
            text(readings), [{"t": T0_US + (5 + i) * MINUTE_US, "e": e} for i, e in enumerate(more)]
        )
    acc.batch()
    found = stored_rows(store)
    store.close()
    return found


def stored_rows(store: Store) -> dict[str, list[tuple[str, ...]]]:
    """Every row the accountant wrote, table by table, as text, in a fixed order."""
    found = {}
    with store.read() as conn:
        for table, columns in TABLES.items():
            query = f"SELECT {columns} FROM {table} ORDER BY {ORDER[table]}"
            found[table] = [tuple(str(v) for v in row) for row in conn.execute(text(query))]
    return found


def test_hashed_beside_the_writes_is_hashed_in_line(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey.generate()
    monkeypatch.setattr(crediting, "HASH_ASIDE_FROM", 10**9)
    in_line = _credited(f"sqlite:///{tmp_path / 'in-line.db'}", key)
    monkeypatch.setattr(crediting, "HASH_ASIDE_FROM", 0)
    monkeypatch.setattr(credits_repo, "_ROWS_PER_STATEMENT", 64)  # several statements a mint
    beside = _credited(db_url, key)
    assert len(in_line["mints"]) == 3  # two under the first register, one after
    assert len(in_line["log_leaves"]) == 3
    assert len(in_line["credits"]) >= 3 * (BACKERS - 1)
    assert beside == in_line
