"""The crediting path with no object per backer (columnar `Register`, list-based `Allocator`,
streamed push body) against the literal reference model of docs/accounting.md.

Random registers: rows of a few backers with weights of 0 to 9 decimal places (0: the
backer leaves), valid from various times, stored between mints; each mint is credited
with the rows stored so far at a random completion time. Per mint, the credits, the
undistributed balance, the weights in force, the backers whose balances row the mint
writes and the push body must be exactly what the reference and `json.dumps` give.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from heliod.rewards import allocation
from heliod.rewards.allocation import Allocator
from heliod.rewards.events import mint_body
from heliod.rewards.register import BEGINNING_US, InForce, Register, ShareRow

from .reference import _allocate
from .reference import weights_at as reference_weights
from .scenario import RowEvent
from .test_properties import PROPERTY, UNITS

H = 3_600_000_000
# Names whose order as text differs from their order of arrival and of length.
NAMES = ("b", "a", "ab", "B", "a.b", "z9", "Z", "aa", "b0", "0")
AMOUNTS = tuple(
    Decimal(w)
    for w in ("0", "1", "2", "3", "0.5", "100", "250.25", "0.000000001", "999999.999999999", "7")
)
TIMES = (BEGINNING_US, -H, 0, H, 2 * H, 5 * H)

rows_st = st.tuples(st.sampled_from(NAMES), st.sampled_from(AMOUNTS), st.sampled_from(TIMES))
# A step is either rows stored now, or a mint completed at a time.
steps_st = st.lists(
    st.one_of(
        st.lists(rows_st, min_size=1, max_size=6).map(lambda rows: ("rows", rows)),
        st.sampled_from((-2 * H, 0, H, 3 * H, 6 * H)).map(lambda t: ("mint", t)),
    ),
    max_size=30,
)


def _old_body(plant: str, k: int, credits: dict[str, int], undistributed: int) -> str:
    """The push body as a plain `json.dumps` of the whole object (its definition)."""
    return json.dumps(
        {
            "event": "mint",
            "id": f"{plant}:{k}",
            "plant": plant,
            "mwh_index": k,
            "completed_at": "2026-01-01T00:00:00Z",
            "symbol": "SLR",
            "decimals": 8,
            "units": 5,
            "credits": [{"backer": b, "units": u} for b, u in sorted(credits.items())],
            "undistributed_units": undistributed,
        },
        separators=(",", ":"),
    )


@PROPERTY
@given(st.sampled_from(UNITS), steps_st)
def test_columnar_register_and_list_allocator_equal_the_reference(
    units: int, steps: list[tuple[str, object]]
) -> None:
    register = Register()
    allocator = Allocator(units)
    stored: list[tuple[int, RowEvent]] = []
    mints: list[tuple[int, int, int]] = []
    got: dict[int, dict[str, int]] = {}
    got_undistributed: list[int] = []
    ever_in_force: set[str] = set()
    for kind, what in steps:
        if kind == "rows":
            assert isinstance(what, list)
            for backer, weight, valid_from in what:
                row_id = len(stored) + 1
                stored.append((row_id, RowEvent("p", backer, weight, valid_from)))
                register.add(ShareRow(row_id, backer, weight, valid_from))
            continue
        assert isinstance(what, int)
        k, pos = len(mints) + 1, len(stored)
        mints.append((k, what, pos))
        in_force = register.weights_at(what, pos)
        expected_weights = reference_weights(stored, what, pos)
        assert {b: Fraction(w) for b, w in in_force.items()} == expected_weights
        assert list(in_force.backers) == sorted(expected_weights)
        allocator.use(in_force)
        credits = allocator.mint()
        pairs = list(credits.pairs())
        assert [b for b, _ in pairs] == sorted(b for b, _ in pairs)
        got[k] = dict(pairs)
        got_undistributed.append(allocator.undistributed)
        # The balances rows this mint writes: those credited and those new in force.
        changed = dict(zip(*allocator.take_changed(), strict=True))
        assert set(changed) == set(got[k]) | (set(expected_weights) - ever_in_force)
        assert changed == {b: allocator.credited_of(b) for b in changed}
        ever_in_force |= set(expected_weights)
        assert mint_body(
            "p",
            k,
            completed_at="2026-01-01T00:00:00Z",
            symbol="SLR",
            decimals=8,
            units=5,
            credits=credits,
            undistributed=allocator.undistributed,
        ) == _old_body("p", k, got[k], allocator.undistributed)
    expected, expected_undistributed = _allocate(units, mints, stored)
    assert got == expected
    assert got_undistributed == expected_undistributed
    totals: dict[str, int] = {}
    for per in expected.values():
        for b, u in per.items():
            totals[b] = totals.get(b, 0) + u
    assert {b: u for b, u in allocator.balances().items() if u} == totals
    assert set(allocator.balances()) == ever_in_force


def _weights_at_each_mint(steps: list[tuple[str, object]]) -> Iterator[InForce]:
    """The register's weights in force at each "mint" step, its "rows" steps stored in order."""
    register = Register()
    row_id = 0
    for kind, what in steps:
        if kind == "rows":
            assert isinstance(what, list)
            for backer, weight, valid_from in what:
                row_id += 1
                register.add(ShareRow(row_id, backer, weight, valid_from))
            continue
        assert isinstance(what, int)
        yield register.weights_at(what, row_id)


@PROPERTY
@given(st.sampled_from(UNITS), steps_st)
def test_runs_of_mints_under_one_key_equal_single_mints(
    units: int, steps: list[tuple[str, object]]
) -> None:
    # What a rebuild does (one `advance` per run of mints with the same weights) gives
    # the same totals as minting one by one.
    one, runs = Allocator(units), Allocator(units)
    pending: list[InForce] = []

    def flush() -> None:
        if pending:
            runs.use(pending[0])
            runs.advance(len(pending))
            pending.clear()

    for in_force in _weights_at_each_mint(steps):
        one.use(in_force)
        one.mint()
        if pending and pending[0].key != in_force.key:
            flush()
        pending.append(in_force)
    flush()
    assert one.balances() == runs.balances()
    assert one.undistributed == runs.undistributed
    for b in one.backers:
        assert one.entitlement(b) == runs.entitlement(b)


@given(st.dictionaries(st.text(min_size=1, max_size=4), st.integers(1, 10**20), max_size=8))
def test_push_body_text_is_json_dumps_of_the_object(credits: dict[str, int]) -> None:
    # Any text a backer id could hold (the store refuses most of it; the body must not care).
    body = mint_body(
        "p",
        3,
        completed_at="2026-01-01T00:00:00Z",
        symbol="SLR",
        decimals=8,
        units=5,
        credits=credits,
        undistributed=7,
    )
    assert body == _old_body("p", 3, credits, 7)
    assert json.loads(body)["credits"] == [
        {"backer": b, "units": u} for b, u in sorted(credits.items())
    ]


@PROPERTY
@given(st.sampled_from(UNITS), steps_st, st.sampled_from([1, 2, 3]))
def test_a_mint_split_in_slices_equals_one_pass(
    units: int, steps: list[tuple[str, object]], size: int
) -> None:
    # A mint walks the backers a slice at a time; with slices of 65,536 the other tests
    # (a few backers) never reach a second slice. Slices of 1 to 3 walk every boundary,
    # with the in-force backers equal to every backer and a subset of them.
    whole = Allocator(units)
    sliced = Allocator(units)
    for in_force in _weights_at_each_mint(steps):
        whole.use(in_force)
        sliced.use(in_force)
        expected = dict(whole.mint().pairs())
        saved = allocation._SLICE
        allocation._SLICE = size
        try:
            got = dict(sliced.mint().pairs())
            changed = list(zip(*sliced.take_changed(), strict=True))
        finally:
            allocation._SLICE = saved
        assert got == expected
        assert changed == list(zip(*whole.take_changed(), strict=True))
        assert sliced.remainders == whole.remainders
        assert sliced.credited == whole.credited
