"""A mint's credit rows, written in bulk (a JSON text per slice on SQLite, executemany
elsewhere): the credits exactly, in backer order, whatever the backer ids hold."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from heliod.adapters.store import Store, credits_repo
from heliod.adapters.store import schema as t
from heliod.rewards.allocation import Allocator
from heliod.rewards.register import InForce

# Backer ids with what JSON must escape (quotes, backslashes, control characters) and
# what it carries as is (accents, CJK, emoji beyond the BMP); no lone surrogates, which no
# store can hold.
backer_ids = st.text(
    st.characters(blacklist_categories=("Cs",), min_codepoint=0), min_size=1, max_size=12
)
units = st.integers(min_value=1, max_value=10**30)  # past 2^63: decimal text on SQLite


def _rows(store: Store, mwh_index: int) -> list[tuple[int, str, int]]:
    c = t.credits.c
    with store.read() as conn:
        found = conn.execute(
            select(c.id, c.backer, c.units)
            .where(c.plant == "p", c.mwh_index == mwh_index)
            .order_by(c.id)
        )
        return [(int(i), b, int(u)) for i, b, u in found]


@pytest.fixture(params=["json", "row by row"])
def store(db_url: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Each store both ways: on SQLite, as a JSON text per slice and, as where SQLite has
    no JSON functions, row by row (PostgreSQL: row by row either way)."""
    if request.param == "row by row":
        monkeypatch.setattr(credits_repo, "_json_rows", lambda: False)
    return Store.open(db_url)


def test_this_sqlite_has_json_rows() -> None:
    assert credits_repo._json_rows()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(backer_ids, units, max_size=40), st.sampled_from([1, 3, 1 << 16]))
@example({"a\x00b": 5, '"\\': 10**25, "é\n😀": 7}, 2)
def test_credit_rows_are_the_credits_in_backer_order(
    store: Store,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    credits: dict[str, int],
    per_statement: int,
) -> None:
    """NUL too, on SQLite (whose JSON functions would cut a text there); PostgreSQL's text
    holds no NUL at all."""
    assume(db_url.startswith("sqlite") or not any("\x00" in b for b in credits))
    monkeypatch.setattr(credits_repo, "_ROWS_PER_STATEMENT", per_statement)
    with store.write() as conn:
        k = (
            conn.execute(select(t.credits.c.mwh_index).order_by(t.credits.c.id.desc())).scalar()
            or 0
        ) + 1
        before = credits_repo.insert_credits(conn, "p", k, credits)
    rows = _rows(store, k)
    # Read in id order, the rows are the credits in backer order: ids follow backer order.
    assert [(b, u) for _, b, u in rows] == sorted(credits.items())
    assert all(i > before for i, _, _ in rows)


def test_an_allocators_credits_go_in_as_they_are(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The allocator's own credits (names and units in step) across several statements."""
    monkeypatch.setattr(credits_repo, "_ROWS_PER_STATEMENT", 64)
    alloc = Allocator(10**8)
    alloc.use(InForce.of((0, 0), {f"b{i:05d}": Decimal(1 + i % 7) for i in range(300)}))
    credits = alloc.mint()
    with store.write() as conn:
        credits_repo.insert_credits(conn, "p", 1, credits)
    assert [(b, u) for _, b, u in _rows(store, 1)] == list(credits.pairs())
