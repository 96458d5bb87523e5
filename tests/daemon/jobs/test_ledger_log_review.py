"""Review findings on the log in the accountant's transaction (docs/verification.md)."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from heliod.adapters.signing import SigningKey
from heliod.adapters.store import log_repo
from heliod.adapters.store import schema as t
from heliod.daemon.boot.settings import log_signer, plant_books
from heliod.daemon.config import load_config
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.jobs.ledger_log import LogMismatch
from heliod.daemon.read import tlog
from heliod.daemon.read.verify import verify_ledger
from heliod.rewards.tlog.note import signed_note
from heliod.rewards.tlog.verify import Failure, canonical_json, check_bundle, leaf_hash
from tests.daemon.jobs.test_ledger_log import FailingKey, counts, logs, verified
from tests.daemon.ledger_fixture import DEVICES, STEP_WH, Ledger, make_ledger, now_us


def _readings(ledger: Ledger, plant: str, mwh: int) -> None:
    device = DEVICES[plant]
    rows = [] if device in ledger.counters else [ledger._next(device, Decimal(0))]
    rows += [ledger._next(device, STEP_WH) for _ in range(4 * mwh)]
    rows.append(ledger._next(device, Decimal(0)))
    ledger.store.ingest(rows, now_us())


def test_a_mint_by_another_accountant_does_not_stop_this_one(tmp_path: Path, db_url: str) -> None:
    """`heliod account` while `heliod run` runs (docs/cli.md: safe, the store serializes
    them): the daemon's accountant goes on from the log the other one grew, at its next
    batch, without a failed batch and without a leaf missing or doubled."""
    ledger = make_ledger(tmp_path, db_url)
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


def _tamper_credit_and_drop_its_log(ledger: Ledger, mwh_index: int) -> None:
    """Mint `mwh_index`'s first credit changed, its leaf and checkpoint (and every later
    one) deleted: what a person who wants the gateway to sign another history does."""
    with ledger.store.write() as conn:
        c = t.credits.c
        first = conn.execute(
            select(c.id).where(c.plant == "alpha", c.mwh_index == mwh_index).order_by(c.id).limit(1)
        ).scalar_one_or_none()
        if first is not None:
            conn.execute(update(t.credits).where(c.id == first).values(units=c.units + 1))
        lv, cp = t.log_leaves.c, t.log_checkpoints.c
        conn.execute(
            delete(t.log_leaves).where(lv.plant == "alpha", lv.leaf_index >= mwh_index - 1)
        )
        conn.execute(delete(t.log_checkpoints).where(cp.plant == "alpha", cp.size >= mwh_index))


@pytest.mark.parametrize("mwh_index", [1, 2])
def test_the_log_of_a_plant_is_built_from_its_mints_once(tmp_path: Path, mwh_index: int) -> None:
    """The log is built from stored mints only for a ledger from before it: once a key
    signed a checkpoint of the plant, a leaf missing under a stored mint is never made
    again (that would sign a second history of the same size), the accountant stops."""
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 2)
    with ledger.store.read() as conn:
        before = list(log_repo.checkpoints(conn, "alpha"))
    _tamper_credit_and_drop_its_log(ledger, mwh_index)
    with pytest.raises(LogMismatch, match="alpha"):
        ledger.produce("alpha", 1)
    with ledger.store.read() as conn:
        after = list(log_repo.checkpoints(conn, "alpha"))
    assert after == before[: mwh_index - 1]  # nothing signed again


def test_ledger_verify_names_a_checkpoint_signed_by_another_key(tmp_path: Path) -> None:
    """A stored checkpoint whose signature is by a key that is not the plant's (edited
    by hand, or signed elsewhere) is a problem `ledger verify` names, not a crash."""
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 2)
    other = SigningKey.generate()
    with ledger.store.write() as conn:
        cp = log_repo.checkpoint(conn, "alpha", 1)
        assert cp is not None
        text = cp.note[: cp.note.index("\n\n") + 1]
        forged = signed_note(text, "heliod/alpha", other.public_key, other.sign)
        c = t.log_checkpoints.c
        conn.execute(
            update(t.log_checkpoints).where(c.plant == "alpha", c.size == 1).values(note=forged)
        )
    found = verified(ledger)
    assert any("checkpoint of size 1" in p and "not signed" in p for p in found), found


def test_ledger_verify_names_a_checkpoint_whose_origin_is_not_its_keys_name(
    tmp_path: Path,
) -> None:
    """A checkpoint must name its log by the name of the key that signed it: one signed
    by the plant's own key but naming another log is a problem."""
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 2)
    signer = log_signer(ledger.config, create=False)
    with ledger.store.write() as conn:
        cp = log_repo.checkpoint(conn, "alpha", 1)
        assert cp is not None
        text = cp.note[: cp.note.index("\n\n") + 1].replace("heliod/alpha\n", "heliod/beta\n", 1)
        key = signer.key
        forged = signed_note(text, "heliod/alpha", key.public_key, key.sign)
        c = t.log_checkpoints.c
        conn.execute(
            update(t.log_checkpoints).where(c.plant == "alpha", c.size == 1).values(note=forged)
        )
    found = verified(ledger)
    assert found == [
        "alpha: the checkpoint of size 1 says origin 'heliod/beta', size 1: not what is stored "
        "with it"
    ], found


@pytest.mark.parametrize("rehash", [False, True])
def test_ledger_verify_names_the_mint_of_an_edited_leaf(tmp_path: Path, rehash: bool) -> None:
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 3)
    assert verified(ledger) == []
    with ledger.store.write() as conn:
        lv = t.log_leaves.c
        where = (lv.plant == "alpha", lv.leaf_index == 1)
        leaf = json.loads(conn.execute(select(lv.leaf).where(*where)).scalar_one())
        leaf["undistributed_units"] += 1
        data = canonical_json(leaf)
        values: dict[str, object] = {"leaf": data.decode()}
        if rehash:
            values["leaf_hash"] = leaf_hash(data)
        conn.execute(update(t.log_leaves).where(*where).values(**values))
    found = verified(ledger)
    assert found, found
    assert "mint 2" in found[0], found


def test_ledger_verify_names_an_edited_checkpoint(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 3)
    with ledger.store.write() as conn:
        cp = log_repo.checkpoint(conn, "alpha", 2)
        assert cp is not None
        lines = cp.note.split("\n")
        lines[1] = "3"  # the size, signature kept
        c = t.log_checkpoints.c
        conn.execute(
            update(t.log_checkpoints)
            .where(c.plant == "alpha", c.size == 2)
            .values(note="\n".join(lines))
        )
    found = verified(ledger)
    assert any("checkpoint of size 2" in p for p in found), found


def test_after_a_key_change_ledger_verify_checks_each_checkpoint_with_its_key(
    tmp_path: Path, db_url: str
) -> None:
    """docs/verification.md, "The key": a lost key replaced by a new one. The log goes on
    under the new key; `ledger verify` checks the older checkpoints with the old key it
    recorded, and a new bundle verifies with the new key."""
    ledger = make_ledger(tmp_path, db_url)
    ledger.produce("alpha", 2)
    path = ledger.config.log.signing_key_file
    assert path is not None
    path.unlink()
    ledger.produce("alpha", 1)  # a new key is created at this start
    with ledger.store.read() as conn:
        assert len(log_repo.keys(conn, "alpha")) == 2
    assert verified(ledger) == []
    signer = log_signer(ledger.config, create=False)
    with ledger.store.read() as conn:
        b = tlog.bundle(conn, "alpha", "alice", "heliod/alpha")
    assert check_bundle(b, signer.vkey("alpha")).tree_size == 3


def test_a_new_key_signing_a_plants_log_is_logged_as_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A key change is an incident to announce (docs/verification.md, "The key"): e.g.
    `heliod account` run from a shell without the daemon's credential creates a key of
    its own in the state directory. The gateway says so when that key signs."""
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 1)
    path = ledger.config.log.signing_key_file
    assert path is not None
    old = log_signer(ledger.config, create=False).vkey("alpha")
    path.unlink()
    with caplog.at_level(logging.WARNING, logger="heliod.log"):
        ledger.produce("alpha", 1)
    new = log_signer(ledger.config, create=False).vkey("alpha")
    warned = [r.getMessage() for r in caplog.records if r.name == "heliod.log"]
    assert any(old in m and new in m and "size 2" in m for m in warned), warned
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="heliod.log"):
        ledger.produce("alpha", 1)  # the same key again: nothing to say
    assert not [r for r in caplog.records if r.name == "heliod.log"]


def test_a_crash_while_building_the_log_of_older_mints_leaves_none_of_it(
    tmp_path: Path,
) -> None:
    """The log of a ledger from before it is built in the first batch's transaction: a
    crash at its signature leaves no leaf, and the next start builds it whole, in order."""
    ledger = make_ledger(tmp_path)
    books = plant_books(ledger.config)
    _readings(ledger, "alpha", 3)
    assert len(Accountant(ledger.store, books, now_us).run().mints) == 3  # no log yet
    assert counts(ledger) == (3, 0, 0, 0)
    signer = log_signer(ledger.config)
    failing = type(signer)(signer.origin_prefix, FailingKey(signer.key, fail_at=1))
    with pytest.raises(RuntimeError, match="power lost"):
        Accountant(ledger.store, books, now_us, log=failing).run()
    assert counts(ledger) == (3, 0, 0, 0)
    with ledger.store.read() as conn:
        assert log_repo.keys(conn, "alpha") == []
    _readings(ledger, "alpha", 1)
    assert Accountant(ledger.store, books, now_us, log=signer).run().mints == [("alpha", 4)]
    assert counts(ledger) == (4, 4, 2, 1)  # checkpoints of sizes 3 (built) and 4
    with ledger.store.read() as conn:
        assert [r.index for r in log_repo.leaf_rows(conn, "alpha")] == [0, 1, 2, 3]
    assert verified(ledger) == []


def test_a_new_origin_prefix_is_a_key_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`[log] origin_prefix` is part of each plant's verifier key (docs/configuration.md):
    changed after mints, the log goes on under the new name, as after a key change; the
    warning names both verifier keys, `ledger verify` checks the older checkpoints under
    the old one, and a new bundle verifies with the new one only."""
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 2)
    old = log_signer(ledger.config, create=False).vkey("alpha")
    path = tmp_path / "heliod.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[api]", '[log]\norigin_prefix = "plantco"\n\n[api]', 1))
    ledger.config = load_config(path, env={})
    new = log_signer(ledger.config, create=False).vkey("alpha")
    assert new.startswith("plantco/alpha+") and old.startswith("heliod/alpha+")
    with caplog.at_level(logging.WARNING, logger="heliod.log"):
        ledger.produce("alpha", 1)
    warned = [r.getMessage() for r in caplog.records if r.name == "heliod.log"]
    assert any(old in m and new in m and "size 3" in m for m in warned), warned
    with ledger.store.read() as conn:
        found, summary = verify_ledger(conn, plant_books(ledger.config), (), logs(ledger))
        b = tlog.bundle(conn, "alpha", "alice", "plantco/alpha")
    assert found == []
    # An auditor sees which keys the checkpoints were checked with (`ledger verify`).
    assert summary["alpha"]["log_keys"] == [
        {"vkey": old, "from_size": 1},
        {"vkey": new, "from_size": 3},
    ]
    assert check_bundle(b, new).tree_size == 3
    with pytest.raises(Failure) as refused:
        check_bundle(b, old)
    assert refused.value.args[0] == "unsigned"
