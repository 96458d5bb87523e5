"""JSON with exact decimals: a Decimal is written as its decimal number, never via a float.

The API, the CLI's `--json` and the MQTT and push bodies carry energy and amounts this way
(docs/accounting.md, "Numbers"); a reader parses them back exactly with
`json.loads(text, parse_float=Decimal)`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def dumps(data: Any) -> str:
    """JSON text of `data`, Decimals written as exact numbers."""
    if isinstance(data, Decimal):
        return format(data, "f")
    if isinstance(data, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v)}" for k, v in data.items()) + "}"
    if isinstance(data, list | tuple):
        return "[" + ", ".join(dumps(v) for v in data) + "]"
    return json.dumps(data)
