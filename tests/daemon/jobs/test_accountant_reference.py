"""The real Accountant on a real store against the literal reference model of
docs/accounting.md, in the situations where cached state could go stale.

Hypothesis draws a history: share rows stored between batches (backers with accented,
combining and astral characters, weights 0 to 10^15 with 0 to 9 decimals, 0 = leaving),
readings that complete several MWh in one step, and batches run by one of two long-lived
accountants (two processes on one store, each with its register and allocators in
memory) or by a fresh one (a restart), or a batch that fails after its mints, at its
balances rows (a crash mid-batch: rolled back, the accountant goes on). Whatever was committed must be what the reference
gives from the stored mints (completion time, register position) and share rows: the
credits of each mint, its undistributed balance, the push body fixed at commit, and the
balances rows (every backer ever in force at a mint has one, 0 included).
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, insert, select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.daemon.jobs.accountant import Accountant
from heliod.rewards.energy import Bound
from heliod.rewards.ledger import PlantBook, PlantRules
from heliod.rewards.readings import ENERGY, Reading
from heliod.rewards.register import BEGINNING_US, register_amount
from tests.rewards.reference import _allocate
from tests.rewards.reference import weights_at as reference_weights
from tests.rewards.scenario import RowEvent
from tests.rewards.test_properties import PROPERTY

T0 = datetime(2024, 3, 1, tzinfo=UTC)
T0_US = int(T0.timestamp() * 1_000_000)
STEP = timedelta(minutes=10)
STEP_US = 600_000_000
NAMES = ("a", "b", "A", "é", "e\u0301", "\U0001d538", "ab", "b\u00e9", "z", "0", 'q"', "k\\")

weights = st.one_of(
    st.just(Decimal(0)),
    st.builds(
        lambda c, p: register_amount(min(Decimal(c).scaleb(-p), Decimal(10) ** 15)),
        st.integers(0, 10**24),
        st.integers(0, 9),
    ),
)
rows = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        weights,
        st.one_of(st.just(BEGINNING_US), st.integers(0, 40).map(lambda n: T0_US + n * STEP_US)),
    ),
    min_size=1,
    max_size=5,
)
# Wh per step: nothing, a little, one MWh, several MWh at once.
deltas = st.lists(
    st.sampled_from([0, 1, 250_000, 999_999, 10**6, 3_400_000, 7_000_001]), min_size=1, max_size=5
)
steps = st.lists(
    st.one_of(
        rows.map(lambda r: ("rows", r)),
        deltas.map(lambda d: ("readings", d)),
        st.sampled_from(["A", "B", "restart"]).map(lambda who: ("batch", who)),
        st.sampled_from(["A", "B"]).map(lambda who: ("crash", who)),
    ),
    max_size=20,
)


@PROPERTY
@given(st.sampled_from([1, 3, 100, 10**8, 12345 * 10**18]), st.sampled_from([1, 2, 50]), steps)
def test_committed_credits_equal_the_reference(
    units: int, batch_size: int, history: list[tuple[str, object]]
) -> None:
    clock = [T0_US + 10**12]

    def now() -> int:
        clock[0] += 1000
        return clock[0]

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'heliod.db'}")
        rules = PlantRules("p", Bound.of(Decimal(10**12), Decimal("1.2")), frozenset({"inv"}), None)
        books = [PlantBook(rules, units, "SLR", 8)]
        accountants: dict[str, Accountant] = {}
        ts, energy = T0, 0
        store.ingest([Reading("inv", ts, {ENERGY: Decimal(energy)})], now())
        for kind, what in history:
            if kind == "rows":
                assert isinstance(what, list)
                with store.write() as conn:
                    conn.execute(
                        insert(t.shares),
                        [
                            {
                                "plant": "p",
                                "backer": b,
                                "weight": str(w),
                                "valid_from_us": v,
                                "stored_us": now(),
                            }
                            for b, w, v in what
                        ],
                    )
            elif kind == "readings":
                assert isinstance(what, list)
                batch = []
                for delta in [*what, 0]:  # the last 0 confirms the step before it
                    ts, energy = ts + STEP, energy + delta
                    batch.append(Reading("inv", ts, {ENERGY: Decimal(energy)}))
                store.ingest(batch, now())
            elif kind == "crash":
                who = str(what)
                if who not in accountants:
                    accountants[who] = Accountant(store, books, now, batch_size=batch_size)
                event.listen(store.engine, "before_cursor_execute", _fail_at_balances)
                try:
                    accountants[who].batch()
                except Crash:
                    pass
                finally:
                    event.remove(store.engine, "before_cursor_execute", _fail_at_balances)
            else:
                who = str(what)
                if who == "restart" or who not in accountants:
                    accountants[who] = Accountant(store, books, now, batch_size=batch_size)
                accountants[who].batch()
        Accountant(store, books, now, batch_size=batch_size).run()
        _check(store, units)
        store.close()


class Crash(Exception):
    """The batch dies here."""


def _fail_at_balances(*args: Any) -> None:
    if str(args[2]).lstrip().upper().startswith("INSERT INTO BALANCES"):
        raise Crash


def _check(store: Store, units: int) -> None:
    m, c, b, s = t.mints.c, t.credits.c, t.balances.c, t.shares.c
    with store.read() as conn:
        mints = conn.execute(
            select(m.mwh_index, m.completed_at_us, m.register_pos, m.undistributed_after, m.event)
            .where(m.plant == "p")
            .order_by(m.mwh_index)
        ).all()
        credit_rows = conn.execute(select(c.mwh_index, c.backer, c.units)).all()
        balances = {r.backer: int(r.units) for r in conn.execute(select(b.backer, b.units))}
        stored = [
            (int(r.id), RowEvent("p", r.backer, Decimal(r.weight), int(r.valid_from_us)))
            for r in conn.execute(select(s.id, s.backer, s.weight, s.valid_from_us).order_by(s.id))
        ]
    assert [r.mwh_index for r in mints] == list(range(1, len(mints) + 1))
    plan = [(int(r.mwh_index), int(r.completed_at_us), int(r.register_pos)) for r in mints]
    expected, undistributed = _allocate(units, plan, stored)
    got: dict[int, dict[str, int]] = {k: {} for k, _, _ in plan}
    for k, backer, u in credit_rows:
        assert backer not in got[int(k)], (k, backer)
        got[int(k)][backer] = int(u)
    assert got == expected
    assert [int(r.undistributed_after) for r in mints] == undistributed
    for r, undist in zip(mints, undistributed, strict=True):
        body = json.loads(r.event)
        k = int(r.mwh_index)
        assert body["credits"] == [
            {"backer": x, "units": u} for x, u in sorted(expected[k].items())
        ]
        assert body["undistributed_units"] == undist
        assert body["units"] == units
    totals: dict[str, int] = {}
    for per in expected.values():
        for backer, u in per.items():
            totals[backer] = totals.get(backer, 0) + u
    ever = {x for _, t_us, pos in plan for x in reference_weights(stored, t_us, pos)}
    assert {x: u for x, u in balances.items() if u} == totals
    assert ever <= set(balances)
