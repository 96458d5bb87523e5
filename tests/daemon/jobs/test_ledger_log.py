"""The log in the accountant's transaction (docs/verification.md): a failure between any
two of its statements leaves the mint and its leaf both or neither, and a ledger from
before the log gets it built from its stored mints at the first batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.migrate import HEAD, alembic_config, current_revision
from heliod.daemon.boot.settings import log_signer, plant_books
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.jobs.ledger_log import LogMismatch
from heliod.daemon.read import tlog
from heliod.daemon.read.verify import verify_ledger
from heliod.rewards.tlog.verify import check_bundle
from tests.daemon.ledger_fixture import Ledger, make_ledger, now_us


def counts(ledger: Ledger, plant: str = "alpha") -> tuple[int, int, int, int]:
    """Mints, leaves, checkpoints and push bodies carrying a checkpoint."""
    with ledger.store.read() as conn:
        mints = conn.execute(select(func.count()).where(t.mints.c.plant == plant)).scalar()
        leaves = conn.execute(select(func.count()).where(t.log_leaves.c.plant == plant)).scalar()
        cps = conn.execute(select(func.count()).where(t.log_checkpoints.c.plant == plant)).scalar()
        bodies = [
            json.loads(e)
            for (e,) in conn.execute(select(t.mints.c.event).where(t.mints.c.plant == plant))
        ]
    return int(mints or 0), int(leaves or 0), int(cps or 0), sum("log" in b for b in bodies)


def logs(ledger: Ledger) -> dict[str, tuple[str, str | None]]:
    signer = log_signer(ledger.config, create=False)
    return {p: (signer.origin(p), signer.vkey(p)) for p in ("alpha", "beta")}


def verified(ledger: Ledger) -> list[str]:
    with ledger.store.read() as conn:
        found, _ = verify_ledger(conn, plant_books(ledger.config), (), logs(ledger))
    return found


class FailingKey:
    """The gateway's key, failing at its n-th signature (a crash inside the mint's
    transaction, before the mint row is written)."""

    def __init__(self, key: object, fail_at: int) -> None:
        self.key = key
        self.public_key = key.public_key  # type: ignore[attr-defined]
        self.calls = 0
        self.fail_at = fail_at

    def sign(self, message: bytes) -> bytes:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("power lost while signing")
        return self.key.sign(message)  # type: ignore[attr-defined,no-any-return]


def test_a_failure_while_signing_rolls_the_whole_batch_back(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 2)
    assert counts(ledger) == (2, 2, 2, 2)
    signer = log_signer(ledger.config)
    failing = type(signer)(signer.origin_prefix, FailingKey(signer.key, fail_at=2))
    ledger.store.ingest([ledger._next("inv1", d) for d in [250_000] * 12 + [0]], now_us())  # type: ignore[misc]
    accountant = Accountant(ledger.store, plant_books(ledger.config), now_us, log=failing)
    with pytest.raises(RuntimeError, match="power lost"):
        accountant.run()
    assert counts(ledger) == (2, 2, 2, 2)  # neither mint 3 (signed) nor mint 4
    assert accountant.run().mints == [
        ("alpha", 3),
        ("alpha", 4),
        ("alpha", 5),
    ]  # the same accountant, again
    assert counts(ledger) == (5, 5, 5, 5)
    assert verified(ledger) == []


def test_a_failure_after_the_mint_and_its_leaf_rolls_both_back(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 1)
    # A row in the way of mint 2's checkpoint: its insert fails after the mint, its
    # credits, its push body and its leaf were written in the same transaction.
    with ledger.store.write() as conn:
        conn.execute(
            insert(t.log_checkpoints).values(
                plant="alpha", size=2, root=b"x" * 32, note="in the way", signed_us=0
            )
        )
    with pytest.raises(Exception, match=r"UNIQUE|unique|duplicate"):
        ledger.produce("alpha", 1)
    assert counts(ledger)[:2] == (1, 1)
    with ledger.store.write() as conn:
        conn.execute(t.log_checkpoints.delete().where(t.log_checkpoints.c.note == "in the way"))
    assert ledger.account() == [("alpha", 2)]
    assert counts(ledger) == (2, 2, 2, 2)
    assert verified(ledger) == []


def test_a_leaf_is_never_rewritten(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 2)
    with ledger.store.write() as conn:  # mint 2 vanishes, its leaf stays
        conn.execute(
            t.credits.delete().where(t.credits.c.mwh_index == 2, t.credits.c.plant == "alpha")
        )
        conn.execute(t.mints.delete().where(t.mints.c.mwh_index == 2, t.mints.c.plant == "alpha"))
        state = json.loads(conn.execute(select(t.accountant.c.state)).scalar_one())
    del state  # the accountant's own state still says 2: it refuses to go on
    with pytest.raises(Exception):  # noqa: B017 - LedgerMismatch or LogMismatch
        ledger.produce("alpha", 1)
    found = verified(ledger)
    assert any("mints that are not stored: [2]" in p for p in found), found
    assert LogMismatch  # the accountant's error for a log ahead of the mints


def test_a_ledger_from_before_the_log_gets_it_built_at_first_start(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path)
    books = plant_books(ledger.config)
    # Mints committed by a version without the log...
    ledger.store.ingest([ledger._next("inv1", d) for d in [0] + [250_000] * 12 + [0]], now_us())  # type: ignore[misc]
    assert len(Accountant(ledger.store, books, now_us).run().mints) == 3
    from heliod.adapters.store.shares import apply_rows
    from heliod.daemon.cli.csv_input import parse_register

    with ledger.store.write() as conn:
        apply_rows(
            conn,
            "alpha",
            parse_register("backer,amount\nbob,300\n", ledger.config.plant("alpha").tz),
            now_us(),
        )
    ledger.store.ingest([ledger._next("inv1", d) for d in [250_000] * 8 + [0]], now_us())  # type: ignore[misc]
    assert len(Accountant(ledger.store, books, now_us).run().mints) == 2
    url = str(ledger.store.engine.url)
    ledger.store.close()
    # ...in a store at the revision before the log's tables.
    from alembic import command

    engine = create_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    assert current_revision(engine) == "0007"
    engine.dispose()
    ledger.store = Store.open(url)  # the first start of this version: upgraded
    assert current_revision(ledger.store.engine) == HEAD
    assert counts(ledger) == (5, 0, 0, 0)
    assert ledger.account() == []  # builds the log, mints nothing
    assert counts(ledger)[:3] == (5, 5, 1)  # one checkpoint: of the size it was built to
    assert verified(ledger) == []
    ledger.produce("alpha", 1)  # and goes on from there
    assert counts(ledger) == (6, 6, 2, 1)
    with ledger.store.read() as conn:
        for backer in ("alice", "bob", "carol"):
            b = tlog.bundle(conn, "alpha", backer, "heliod/alpha")
            assert check_bundle(b, logs(ledger)["alpha"][1] or "").tree_size == 6
    assert verified(ledger) == []
    ledger.store.close()
