"""Exact JSON (rewards/exact_json.py): Decimals as written, everything else as json writes it,
whether the standard encoder or the exact one writes the text."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heliod.rewards.exact_json import dumps

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
DECIMALS = st.decimals(allow_nan=False, allow_infinity=False)
KEYS = st.text() | st.integers()  # what the API's and the CLI's bodies use
VALUES = st.recursive(
    SCALARS | DECIMALS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=30,
)


def _one_call_per_value(data: Any) -> str:
    """The writer as it was before the standard encoder's fast path: the oracle."""
    if isinstance(data, Decimal):
        return format(data, "f")
    if isinstance(data, dict):
        items = (f"{json.dumps(str(k))}: {_one_call_per_value(v)}" for k, v in data.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(data, list | tuple):
        return "[" + ", ".join(_one_call_per_value(v) for v in data) + "]"
    return json.dumps(data)


def _has_decimal(data: Any) -> bool:
    if isinstance(data, Decimal):
        return True
    if isinstance(data, dict):
        return any(_has_decimal(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_decimal(v) for v in data)
    return False


@given(VALUES)
def test_the_text_reads_back_exactly_and_is_what_it_was(data: Any) -> None:
    text = dumps(data)
    assert _same(json.loads(text, parse_float=Decimal), data)
    assert text == _one_call_per_value(data)
    if not _has_decimal(data):
        assert text == json.dumps(data)


def _same(back: Any, data: Any) -> bool:
    """`back` (parsed with Decimal floats) is `data`, a Decimal read back as the same number."""
    if isinstance(data, Decimal):
        return isinstance(back, int | Decimal) and Decimal(back) == data
    if isinstance(data, float):
        return back == Decimal(repr(data)) or back == data
    if isinstance(data, dict):
        pairs = {str(k): v for k, v in data.items()}
        return back.keys() == pairs.keys() and all(_same(back[k], v) for k, v in pairs.items())
    if isinstance(data, list):
        return len(back) == len(data) and all(_same(b, d) for b, d in zip(back, data, strict=True))
    return bool(back == data)


def test_a_decimal_is_written_as_its_number() -> None:
    body = {"units": Decimal("0.100000000"), "mwh": [Decimal("12.5"), 3], "k": "x"}
    assert dumps(body) == '{"units": 0.100000000, "mwh": [12.5, 3], "k": "x"}'


def test_what_json_cannot_write_is_still_refused() -> None:
    with pytest.raises(TypeError):
        dumps({"at": object()})
