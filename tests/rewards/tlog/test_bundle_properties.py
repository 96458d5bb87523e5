"""The live allocator's credits, logged and proved, pass the offline verifier: two
independent computations of docs/accounting.md's rule (the allocator's integers over a
common denominator, the verifier's Fractions) agree for every backer; and a credit that
differs from the rule by one unit is named."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heliod.rewards.allocation import Allocator
from heliod.rewards.register import InForce
from heliod.rewards.tlog.verify import Failure, check_bundle

from .ledger import Key, Log

BACKERS = ["ann", "bob", "cé", "dan", "Émile"]
registers = st.lists(
    st.dictionaries(
        st.sampled_from(BACKERS),
        st.decimals(min_value=0, max_value=1000, places=3, allow_nan=False, allow_infinity=False),
        max_size=len(BACKERS),
    ),
    min_size=1,
    max_size=6,
)
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def allocated_log(
    eras: list[dict[str, Decimal]], mints_per_era: int, units: int
) -> tuple[Log, Allocator]:
    log = Log("p1", units, Key("heliod/p1"))
    allocator = Allocator(units)
    for era, weights in enumerate(eras):
        positive = {b: w for b, w in weights.items() if w > 0}
        allocator.use(InForce.of((era, 0), positive))
        for _ in range(mints_per_era):
            log.mint(weights, credits=dict(allocator.mint()))
    return log, allocator


@PROPERTY
@given(registers, st.integers(1, 4), st.sampled_from([1, 3, 7, 10**8]))
def test_the_live_allocators_credits_verify_for_every_backer(
    eras: list[dict[str, Decimal]], mints_per_era: int, units: int
) -> None:
    log, allocator = allocated_log(eras, mints_per_era, units)
    for backer in BACKERS:
        bundle = json.loads(json.dumps(log.bundle(backer), ensure_ascii=False))
        result = check_bundle(bundle, log.key.vkey)
        assert result.balance_units == allocator.credited_of(backer)
        assert result.entitlement == allocator.entitlement(backer)


@PROPERTY
@given(registers, st.sampled_from([3, 7, 10**8]), st.data())
def test_one_unit_moved_between_backers_is_named(
    eras: list[dict[str, Decimal]], units: int, data: st.DataObject
) -> None:
    log, _ = allocated_log(eras, 1, units)
    credited = [(i, tree) for i, tree in enumerate(log.credits) if tree.count]
    if not credited:
        return
    at, tree = data.draw(st.sampled_from(credited))
    giver = data.draw(st.sampled_from(tree.backers))
    taker = data.draw(st.sampled_from([b for b in BACKERS if b != giver]))
    moved = dict(zip(tree.backers, tree.values, strict=True))
    moved[giver] -= 1
    moved[taker] = moved.get(taker, 0) + 1
    lying = Log("p1", units, Key("heliod/p1"))
    for i, weights in enumerate(eras):
        lying.mint(
            weights,
            credits=moved
            if i == at
            else dict(zip(log.credits[i].backers, log.credits[i].values, strict=True)),
        )
    for backer in (giver, taker):
        with pytest.raises(Failure) as caught:
            check_bundle(lying.bundle(backer), lying.key.vkey)
        assert caught.value.code in {"credit_wrong", "credit_missing"}
        assert caught.value.params["mwh_index"] == at + 1
