"""The bodies heliod pushes to the platform and publishes on MQTT (docs/platform.md, "The push").

A body's bytes are fixed when its mint is committed: they are built here, once, from the
mint's values, and stored with it; every later attempt sends the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


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
    """The mint event: `{"event": "mint", "id": "<plant>:<k>", …}`, credits sorted by
    backer; `log`: the mint's leaf index and the signed checkpoint (docs/verification.md)."""
    body: dict[str, Any] = {
        "event": "mint",
        "id": f"{plant}:{mwh_index}",
        "plant": plant,
        "mwh_index": mwh_index,
        "completed_at": completed_at,
        "symbol": symbol,
        "decimals": decimals,
        "units": units,
        "credits": [{"backer": b, "units": u} for b, u in sorted(credits.items())],
        "undistributed_units": undistributed,
    }
    if log is not None:
        body["log"] = dict(log)
    return json.dumps(body, separators=(",", ":"))
