"""`ledger verify` on a real store: each check catches a deliberately corrupted row.

The ledger is the one heliod commits (tests/daemon/ledger_fixture.py); each test then
changes one stored row with SQL, as a bug or a hand might, and `verify_ledger` must name it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from heliod.adapters.store import schema as t
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.settings import plant_books
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.read.verify import verify_ledger
from tests.daemon.ledger_fixture import Ledger, make_ledger, now_us


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    book = make_ledger(tmp_path)
    book.produce("alpha", 3)
    yield book
    book.store.close()


def problems(ledger: Ledger) -> list[str]:
    with ledger.store.read() as conn:
        found, _ = verify_ledger(conn, plant_books(ledger.config))
    return found


def test_the_ledger_as_committed_verifies(ledger: Ledger) -> None:
    assert problems(ledger) == []


def test_a_push_body_whose_credits_were_changed_is_reported(ledger: Ledger) -> None:
    with ledger.store.write() as conn:
        event = conn.execute(
            select(t.mints.c.event).where(t.mints.c.plant == "alpha", t.mints.c.mwh_index == 2)
        ).scalar_one()
        body = json.loads(event)
        body["credits"][0]["units"] += 1  # the platform would credit one unit too many
        conn.execute(
            update(t.mints)
            .where(t.mints.c.plant == "alpha", t.mints.c.mwh_index == 2)
            .values(event=json.dumps(body, separators=(",", ":")))
        )
    [found] = problems(ledger)
    assert found.startswith("alpha: mint 2: the stored push body's credits is [('alice', ")


def test_a_push_body_with_another_undistributed_balance_is_reported(ledger: Ledger) -> None:
    with ledger.store.write() as conn:
        conn.exec_driver_sql(
            "UPDATE mints SET event = replace(event, '\"undistributed_units\":1', "
            "'\"undistributed_units\":0') WHERE plant = 'alpha' AND mwh_index = 1"
        )
    assert problems(ledger) == [
        "alpha: mint 1: the stored push body's undistributed_units is 0, the ledger says 1"
    ]


def test_a_register_row_stored_after_a_mint_that_used_it_is_reported(ledger: Ledger) -> None:
    with ledger.store.write() as conn:
        committed = conn.execute(
            select(t.mints.c.committed_us).where(t.mints.c.mwh_index == 1)
        ).scalar_one()
        conn.execute(
            update(t.shares)
            .where(t.shares.c.plant == "alpha", t.shares.c.backer == "carol")
            .values(stored_us=committed + 1)
        )
    found = problems(ledger)
    assert found[0].startswith(f"alpha: mint 1 (committed at {committed} µs) used register row ")
    assert found[0].endswith(f"stored after it at {committed + 1} µs")


def test_a_late_row_claimed_stored_before_a_mint_is_reported(ledger: Ledger) -> None:
    # dave joins alpha after its three mints (a late row: it applies to the next ones).
    plant = ledger.config.plant("alpha")
    with ledger.store.write() as conn:
        apply_rows(conn, "alpha", parse_register("backer,amount\ndave,100\n", plant.tz), now_us())
    ledger.produce("alpha", 1)
    assert problems(ledger) == []
    with ledger.store.write() as conn:
        conn.execute(update(t.shares).where(t.shares.c.backer == "dave").values(stored_us=1))
        # and the clock kept going forward for the other rows: they are stored at 1 too
        conn.execute(update(t.shares).where(t.shares.c.plant == "alpha").values(stored_us=1))
    found = problems(ledger)
    assert found[0].startswith("alpha: mint 1 (committed at ")
    assert "left out register row" in found[0]


def test_a_register_position_that_is_no_row_is_reported(ledger: Ledger) -> None:
    with ledger.store.write() as conn:
        conn.execute(
            update(t.mints)
            .where(t.mints.c.plant == "alpha", t.mints.c.mwh_index == 3)
            .values(register_pos=999)
        )
    assert (
        "alpha: mint 3 records register position 999, which is no row of the plant's register"
        in problems(ledger)
    )


def test_a_push_body_with_a_key_added_is_reported(ledger: Ledger) -> None:
    with ledger.store.write() as conn:
        conn.exec_driver_sql(
            'UPDATE mints SET event = replace(event, \'"event":"mint"\', '
            '\'"event":"mint","bonus_units":5\') WHERE plant = \'alpha\' AND mwh_index = 3'
        )
    [found] = problems(ledger)
    assert found.startswith("alpha: mint 3: the stored push body has keys [")
    assert "'bonus_units'" in found


def test_a_clock_jump_elsewhere_leaves_the_later_stretch_checked(ledger: Ledger) -> None:
    # Mint 1 committed by a clock far ahead (it went back before mint 2): the times
    # before and after that jump are still compared within their own stretch. A row
    # stored after every mint, re-dated to before mint 3's commit, is caught.
    m = t.mints.c
    with ledger.store.write() as conn:
        conn.execute(
            update(t.mints)
            .where(m.plant == "alpha", m.mwh_index == 1)
            .values(committed_us=m.committed_us + 3650 * 86_400 * 10**6)
        )
    late = parse_register("backer,amount\ndave,1\n", ledger.config.plant("alpha").tz)
    with ledger.store.write() as conn:
        apply_rows(conn, "alpha", late, now_us())
    assert problems(ledger) == []
    with ledger.store.write() as conn:
        third = conn.execute(
            select(m.committed_us).where(m.plant == "alpha", m.mwh_index == 3)
        ).scalar_one()
        dave = conn.execute(select(func.max(t.shares.c.id))).scalar_one()
        conn.execute(update(t.shares).where(t.shares.c.id == dave).values(stored_us=third - 1))
    found = problems(ledger)
    assert (
        f"alpha: mint 3 (committed at {third} µs) left out register row {dave}, " in (found[-1])
    ), found
    assert all(f"left out register row {dave}" in p for p in found), found
