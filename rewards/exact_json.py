"""JSON with exact decimals: a Decimal is written as its decimal number, never via a float.

The API, the CLI's `--json` and the MQTT and push bodies carry energy and amounts this way
(docs/accounting.md, "Numbers"); a reader parses them back exactly with
`json.loads(text, parse_float=Decimal)`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


class _HasDecimal(Exception):
    """`data` holds a Decimal: the standard encoder would have to write it via a float."""


def _refuse(value: object) -> object:
    if isinstance(value, Decimal):
        raise _HasDecimal
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(data: Any) -> str:
    """JSON text of `data`, Decimals written as exact numbers; keys are str or int (as
    every body of the API and the CLI has them: a bool or None key would be written
    `true`/`null` by the fast path and `True`/`None` by the exact one)."""
    try:  # the standard library's C encoder, for data without a Decimal (a proof bundle)
        return json.dumps(data, default=_refuse)
    except (_HasDecimal, TypeError):  # a Decimal, or a key json refuses and str() writes
        return _dumps(data)


def _dumps(data: Any) -> str:
    if isinstance(data, Decimal):
        return format(data, "f")
    if isinstance(data, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_dumps(v)}" for k, v in data.items()) + "}"
    if isinstance(data, list | tuple):
        return "[" + ", ".join(_dumps(v) for v in data) + "]"
    return json.dumps(data)
