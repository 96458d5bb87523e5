"""The log as the accountant commits it, read back: every bundle verifies with the
offline verifier's own code, entries and consistency proofs match the checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from heliod.adapters.store import ledger_repo, log_repo
from heliod.adapters.store import schema as t
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.settings import log_signer
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.read import tlog
from heliod.rewards.register import Register
from heliod.rewards.tlog.leaves import BackerTree
from heliod.rewards.tlog.note import make_bundle
from heliod.rewards.tlog.verify import (
    Failure,
    check_bundle,
    open_note,
    parse_checkpoint,
    parse_vkey,
    verify_consistency,
)
from tests.daemon.ledger_fixture import Ledger, make_ledger, now_us


@pytest.fixture
def ledger(tmp_path: Path, db_url: str) -> Iterator[Ledger]:
    """On SQLite and on PostgreSQL (the bundle reads credit runs through the driver)."""
    book = make_ledger(tmp_path, db_url)
    book.produce("alpha", 3)
    with book.store.write() as conn:  # a register change: dave joins, bob doubles
        text = "backer,amount\nbob,200\ndave,50\n"
        apply_rows(conn, "alpha", parse_register(text, book.config.plant("alpha").tz), now_us())
    book.produce("alpha", 4)
    book.produce("beta", 2)
    yield book
    book.store.close()


def _vkey(ledger: Ledger, plant: str) -> str:
    signer = log_signer(ledger.config)
    from heliod.rewards.tlog.note import vkey

    return vkey(signer.origin(plant), signer.key.public_key)


def test_every_backers_bundle_verifies(ledger: Ledger) -> None:
    balances = {}
    with ledger.store.read() as conn:
        for backer in ("alice", "bob", "carol", "dave", "nobody"):
            b = tlog.bundle(conn, "alpha", backer, "heliod/alpha")
            result = check_bundle(b, _vkey(ledger, "alpha"))
            balances[backer] = result.balance_units
            assert result.tree_size == 7
        stored = {
            r.backer: int(r.units)
            for r in conn.execute(select(t.balances).where(t.balances.c.plant == "alpha"))
        }
    assert balances == {**{b: stored.get(b, 0) for b in balances}}
    assert balances["dave"] > 0
    assert balances["nobody"] == 0


def test_push_bodies_carry_the_checkpoint_of_their_size(ledger: Ledger) -> None:
    name, key = parse_vkey(_vkey(ledger, "alpha"))
    with ledger.store.read() as conn:
        events = conn.execute(
            select(t.mints.c.mwh_index, t.mints.c.event).where(t.mints.c.plant == "alpha")
        ).all()
        for k, event in events:
            body = json.loads(event)
            assert body["log"]["leaf_index"] == k - 1
            origin, size, _root = parse_checkpoint(open_note(body["log"]["checkpoint"], name, key))
            assert (origin, size) == ("heliod/alpha", k)


def test_consistency_between_every_pair_of_sizes(ledger: Ledger) -> None:
    name, key = parse_vkey(_vkey(ledger, "alpha"))
    with ledger.store.read() as conn:
        roots = {}
        for k in range(1, 8):
            event = conn.execute(
                select(t.mints.c.event).where(t.mints.c.plant == "alpha", t.mints.c.mwh_index == k)
            ).scalar_one()
            _o, size, root = parse_checkpoint(
                open_note(json.loads(event)["log"]["checkpoint"], name, key)
            )
            roots[size] = root
        for m in range(1, 8):
            for n in range(m, 8):
                proof = tlog.consistency(conn, "alpha", m, n)
                hashes = [bytes.fromhex(h) for h in proof["proof"]]
                if m < n:
                    verify_consistency(m, n, roots[m], roots[n], hashes)
                else:
                    assert hashes == []
        assert tlog.consistency(conn, "alpha", 3, None)["to"] == 7
        with pytest.raises(tlog.LogUnavailable):
            tlog.consistency(conn, "alpha", 0, 3)
        with pytest.raises(tlog.LogUnavailable):
            tlog.consistency(conn, "alpha", 5, 8)


def test_entries_page_through_every_leaf(ledger: Ledger) -> None:
    with ledger.store.read() as conn:
        first = tlog.entries(conn, "alpha", 0, 4)
        second = tlog.entries(conn, "alpha", first["next"], 4)
    assert [i["index"] for i in first["items"]] == [0, 1, 2, 3]
    assert [i["index"] for i in second["items"]] == [4, 5, 6]
    assert second["next"] is None
    assert first["items"][0]["leaf"]["mwh_index"] == 1
    assert first["items"][0]["leaf"]["plant"] == "alpha"


def test_a_bundle_edited_by_hand_fails(ledger: Ledger) -> None:
    with ledger.store.read() as conn:
        b = tlog.bundle(conn, "alpha", "alice", "heliod/alpha")
    credited = next(m for m in b["mints"] if m["credit"] is not None)
    credited["credit"]["units"] += 1
    with pytest.raises(Failure):
        check_bundle(b, _vkey(ledger, "alpha"))


def _whole_trees_bundle(conn: Connection, plant: str, backer: str, since: int | None) -> object:
    """The bundle from every tree rebuilt whole from the stored mints, credits and
    register rows (no stored tiles), through the pure core's `make_bundle`."""
    register = Register(ledger_repo.share_rows(conn, plant))
    checkpoint = log_repo.newest_checkpoint(conn, plant)
    assert checkpoint is not None
    leaves = [json.loads(leaf) for _, leaf in log_repo.leaves(conn, plant, 0, checkpoint.size)]
    registers, credits = [], []
    for mint in log_repo.mints_after(conn, plant, 0):
        weights = register.weights_at(mint.completed_at_us, mint.register_pos)
        registers.append(BackerTree.register(weights).place(backer))
        got = log_repo.credits_of(conn, plant, mint.mwh_index)
        credits.append(BackerTree.credits(got).place(backer))
    return make_bundle(
        plant=plant,
        backer=backer,
        origin=f"heliod/{plant}",
        checkpoint=checkpoint.note,
        leaves=leaves,
        registers=registers,
        credits=credits,
        since=since,
    )


def test_the_bundle_from_the_stored_tiles_is_the_bundle_of_the_whole_trees(
    ledger: Ledger,
) -> None:
    """Byte for byte, on a ledger with a register change, for backers with and without
    credits, with and without a consistency proof."""
    seen = 0
    with ledger.store.read() as conn:
        for backer in ("alice", "bob", "carol", "dave", "nobody"):
            for since in (None, 0, 2, 7):
                fast = tlog.bundle(conn, "alpha", backer, "heliod/alpha", since)
                whole = _whole_trees_bundle(conn, "alpha", backer, since)
                assert json.dumps(fast).encode() == json.dumps(whole).encode()
                seen += sum(m["credit"] is not None for m in fast["mints"])
    assert seen > 0
