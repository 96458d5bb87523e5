"""InfluxDB line protocol (docs/export.md) built straight from store rows: no Point objects.

`reading,device=<id>,plant=<id> energy_wh=<float>,power_w=<float>[,<extra>=<float>…] <µs>`
and `mint,plant=<id> mwh_index=<int>i,units=<int>i,tokens=<float> <µs>`, written with
precision "us". Tags are sorted by key, as InfluxDB stores them.

Numbers: the store keeps energy and power as integer mWh and mW, so each value is written
as its exact decimal text with three places (`1234.567`), which the server reads as a
float (no `i` suffix) and rounds once to the nearest double. Extra fields are stored as
decimal text and written as such (`.0` appended to a bare integer), so a field never
changes type between points.

This module is the reference; `source.py` has a faster SQLite path tested equal to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal

READING = "reading"
MINT = "mint"
INT64_MAX = 2**63 - 1  # line-protocol integers are signed 64-bit

# Tag keys, tag values and field keys escape comma, equals sign and space; a newline
# cannot be written at all (heliod's ids and field names never contain one).
_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": " ", "\r": " "})

ReadingRow = tuple[int, str, int, int | None, int | None, str | None]
MintRow = tuple[int, str, int, int, int, str]  # id, plant, mwh_index, at_us, units, event


def escape(text: str) -> str:
    """A tag key, tag value or field key written as line protocol."""
    return text.translate(_ESCAPES)


def milli_text(value: int) -> str:
    """Exact decimal text of an integer count of thousandths (mWh → Wh, mW → W)."""
    if value < 0:
        return "-" + milli_text(-value)
    return f"{value // 1000}.{value % 1000:03d}"


def float_text(text: str) -> str:
    """Stored decimal text as a float literal: a bare integer gets `.0`."""
    if "." in text or "E" in text or "e" in text:
        return text
    return text + ".0"


def reading_prefix(plant: str | None, device: str) -> str:
    """Measurement and tags of a device's readings, up to and including the space."""
    if plant is None:  # a device no longer in the configuration: exported without plant
        return f"{READING},device={escape(device)} "
    return f"{READING},device={escape(device)},plant={escape(plant)} "


def reading_fields(energy_mwh: int | None, power_mw: int | None, extra: str | None) -> str:
    """The field set of one reading ("" when it has no field)."""
    parts = []
    if energy_mwh is not None:
        parts.append("energy_wh=" + milli_text(energy_mwh))
    if power_mw is not None:
        parts.append("power_w=" + milli_text(power_mw))
    if extra:
        values: dict[str, str] = json.loads(extra)
        parts.extend(f"{escape(k)}={float_text(v)}" for k, v in values.items())
    return ",".join(parts)


def reading_lines(rows: Iterable[ReadingRow], prefixes: Mapping[str, str]) -> bytes:
    """Line protocol for reading rows (id, device, ts_us, energy_mwh, power_mw, extra).

    Rows without any field are skipped (a point needs at least one); `prefixes` maps a
    device to its `reading_prefix`, devices missing from it are written without plant.
    """
    out = []
    for _id, device, ts_us, energy, power, extra in rows:
        fields = reading_fields(energy, power, extra)
        if not fields:
            continue
        prefix = prefixes.get(device) or reading_prefix(None, device)
        out.append(f"{prefix}{fields} {ts_us}")
    return "\n".join(out).encode()


def tokens_text(units: int, decimals: int) -> str:
    """Exact decimal text of `units` base units in tokens (a float literal)."""
    if decimals <= 0:
        return f"{units}.0"
    return format(Decimal(units).scaleb(-decimals), "f")


def mint_line(plant: str, mwh_index: int, completed_at_us: int, units: int, decimals: int) -> str:
    """One `mint` point; units beyond int64 go to a string field `units_text` instead."""
    fields = [f"mwh_index={mwh_index}i"]
    if 0 <= units <= INT64_MAX:
        fields.append(f"units={units}i")
    else:
        # A line-protocol integer is 64-bit: rather than round or change the field's
        # type, such a plant's exact units travel as text (tokens stays a float).
        fields.append(f'units_text="{units}"')
    fields.append("tokens=" + tokens_text(units, decimals))
    return f"{MINT},plant={escape(plant)} {','.join(fields)} {completed_at_us}"


def mint_lines(rows: Iterable[MintRow]) -> bytes:
    """Line protocol for mint rows (id, plant, mwh_index, completed_at_us, units, event)."""
    out = []
    for _id, plant, k, at_us, units, event in rows:
        decimals = int(json.loads(event).get("decimals", 0))
        out.append(mint_line(plant, int(k), int(at_us), int(units), decimals))
    return "\n".join(out).encode()
