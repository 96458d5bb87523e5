"""The bodies heliod pushes to the platform and publishes on MQTT (docs/platform.md, "The push").

A body's bytes are fixed when its mint is committed: they are built here, once, from the
mint's values, and stored with it; every later attempt sends the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from itertools import islice
from json.encoder import encode_basestring_ascii
from typing import Any

from heliod.rewards.allocation import Credits


def mint_body(
    plant: str,
    mwh_index: int,
    *,
    completed_at: str,
    symbol: str,
    decimals: int,
    units: int,
    credits: Mapping[str, int],
    undistributed: int,
    log: Mapping[str, Any] | None = None,
) -> str:
    """The mint event: `{"event": "mint", "id": "<plant>:<k>", …}`, credits sorted by backer;
    `log`: the mint's leaf index and the signed checkpoint (docs/verification.md).

    The same text as `json.dumps` of the whole object with compact separators, written
    piece by piece: the credits of a mint to a million backers never exist as a million
    dictionaries.
    """
    head = json.dumps(
        {
            "event": "mint",
            "id": f"{plant}:{mwh_index}",
            "plant": plant,
            "mwh_index": mwh_index,
            "completed_at": completed_at,
            "symbol": symbol,
            "decimals": decimals,
            "units": units,
        },
        separators=(",", ":"),
    )
    if isinstance(credits, Credits):
        names, amounts = credits.names(), iter(credits.units)
    else:
        names, amounts = iter(sorted(credits)), iter([credits[b] for b in sorted(credits)])
    items = map(_ITEM, map(_string, names), map(int, amounts))
    parts = [head[:-1], ',"credits":[']
    first = True
    while chunk := ",".join(islice(items, _CHUNK)):
        parts.append(chunk if first else "," + chunk)
        first = False
    parts.append(f'],"undistributed_units":{int(undistributed)}')
    if log is not None:
        parts.append(',"log":' + json.dumps(dict(log), separators=(",", ":")))
    parts.append("}")
    return "".join(parts)


_CHUNK = 10_000
_ITEM = '{{"backer":{},"units":{}}}'.format
_string = encode_basestring_ascii  # what json.dumps writes for a string (ensure_ascii)
