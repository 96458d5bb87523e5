"""The text of a reading's other fields is exactly what json.dumps would write."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from heliod.adapters.store.store import _extra

names = st.text(min_size=1, max_size=12)
values = st.decimals(allow_nan=False, allow_infinity=False)


@given(st.dictionaries(names, values, min_size=1, max_size=6))
def test_same_text_as_json_dumps(fields: dict[str, Decimal]) -> None:
    expected = json.dumps({k: str(v) for k, v in sorted(fields.items())}, separators=(",", ":"))
    assert _extra(fields) == expected
    assert json.loads(_extra(fields)) == {k: str(v) for k, v in fields.items()}


def test_a_hand_written_example() -> None:
    fields = {"voltage": Decimal("228.5"), "a\u00e9": Decimal("-1E+3"), 'q"': Decimal("0.000")}
    assert _extra(fields) == '{"a\\u00e9":"-1E+3","q\\"":"0.000","voltage":"228.5"}'
