"""Review: bundles of a plant whose mints credit more backers than one run of stored
tiles (16 leaves), with backer ids whose UTF-8 byte order is not their alphabetical
order, a backer who leaves and one who joins late; every backer's bundle, with and
without `since`, verifies with the offline verifier's own code and gives the stored
balance."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from heliod.adapters.store import schema as t
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.settings import log_signer
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.read import tlog
from heliod.rewards.tlog.note import vkey
from heliod.rewards.tlog.verify import check_bundle
from tests.daemon.ledger_fixture import make_ledger, now_us

# Byte order: upper case before lower case, "+" "-" "." ":" "@" before "_".
NAMES = [f"b{i:02d}" for i in range(30)] + ["Zed", "a-b", "a_b", "a.b", "A+b", "a@b", "a:b"]


def test_every_backers_bundle_verifies_across_runs(tmp_path: Path, db_url: str) -> None:
    """On SQLite and PostgreSQL (the credit runs are read through the driver's cursor)."""
    ledger = make_ledger(tmp_path, db_url)
    tz = ledger.config.plant("alpha").tz
    rows = "".join(f"{n},{7 + 3 * i}\n" for i, n in enumerate(NAMES))
    with ledger.store.write() as conn:
        apply_rows(conn, "alpha", parse_register("backer,amount\n" + rows, tz), now_us())
    ledger.produce("alpha", 3)
    with ledger.store.write() as conn:  # b03 leaves, late joins, Zed doubles
        text = "backer,amount\nb03,0\nlate,1000\nZed,500\n"
        apply_rows(conn, "alpha", parse_register(text, tz), now_us())
    ledger.produce("alpha", 3)
    signer = log_signer(ledger.config)
    key = vkey(signer.origin("alpha"), signer.key.public_key)
    with ledger.store.read() as conn:
        stored = {
            r.backer: int(r.units)
            for r in conn.execute(select(t.balances).where(t.balances.c.plant == "alpha"))
        }
        for backer in [*NAMES, "late", "alice", "nobody"]:
            for since in (None, 0, 1, 4, 6):
                b = tlog.bundle(conn, "alpha", backer, "heliod/alpha", since=since)
                result = check_bundle(b, key)
                assert result.tree_size == 6
                assert result.balance_units == stored.get(backer, 0), backer
        late = tlog.bundle(conn, "alpha", "late", "heliod/alpha")
        assert [m["register"] is None for m in late["mints"]] == [True] * 3 + [False] * 3
        gone = tlog.bundle(conn, "alpha", "b03", "heliod/alpha")
        assert [m["register"] is None for m in gone["mints"]] == [False] * 3 + [True] * 3
    ledger.store.close()
