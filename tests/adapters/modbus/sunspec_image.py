"""Register images of SunSpec devices built from the model definitions pysunspec2 ships.

The adapter carries its own compact tables; building the test devices from the SunSpec
Alliance's JSON instead means a wrong offset or type in those tables fails the tests.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import sunspec2

MODELS_DIR = Path(sunspec2.__file__).parent / "models" / "json"
# SunSpec "not implemented" value of each type, used for every point a test leaves unset.
NOT_IMPLEMENTED: dict[str, int | float | str] = {
    "int16": 0x8000,
    "uint16": 0xFFFF,
    "count": 0xFFFF,
    "acc16": 0,
    "enum16": 0xFFFF,
    "bitfield16": 0xFFFF,
    "pad": 0x8000,
    "int32": 0x80000000,
    "uint32": 0xFFFFFFFF,
    "acc32": 0,
    "enum32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
    "int64": 0x8000000000000000,
    "uint64": 0xFFFFFFFFFFFFFFFF,
    "acc64": 0,
    "float32": math.nan,
    "sunssf": 0x8000,
    "string": "",
}


@cache
def model_points(model_id: int) -> list[dict[str, Any]]:
    """The top-level points of a model definition, in order, each with its offset."""
    group = json.loads((MODELS_DIR / f"model_{model_id}.json").read_text())["group"]
    offset = 0
    points = []
    for point in group["points"]:
        points.append({**point, "offset": offset})
        offset += point["size"]
    return points


def encode_point(point: Mapping[str, Any], value: int | float | str) -> list[int]:
    """Registers of one point's value, as a SunSpec device sends them (big-endian)."""
    size = point["size"]
    if point["type"] == "string":
        data = str(value).encode("latin-1")[: 2 * size].ljust(2 * size, b"\x00")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * size, 2)]
    if point["type"] == "float32":
        raw = int.from_bytes(struct.pack(">f", value), "big")
    else:
        raw = int(value) & ((1 << (16 * size)) - 1)
    return [(raw >> (16 * (size - 1 - i))) & 0xFFFF for i in range(size)]


def model_words(model_id: int, values: Mapping[str, int | float | str]) -> list[int]:
    """A whole model (ID and L included); unset points read as not implemented."""
    unknown = set(values) - {p["name"] for p in model_points(model_id)}
    if unknown:
        raise KeyError(f"model {model_id} has no point {sorted(unknown)}")
    words: list[int] = []
    points = model_points(model_id)
    length = sum(p["size"] for p in points) - 2
    for point in points:
        if point["name"] == "ID":
            value: int | float | str = model_id
        elif point["name"] == "L":
            value = length
        else:
            value = values.get(point["name"], NOT_IMPLEMENTED[point["type"]])
        words.extend(encode_point(point, value))
    return words


def sunspec_image(
    models: Sequence[tuple[int, Mapping[str, int | float | str]]],
    base: int = 40000,
    end_marker: bool = True,
) -> dict[int, int]:
    """Holding registers of a device: "SunS", the models in order, then the end marker."""
    words = [0x5375, 0x6E53]
    for model_id, values in models:
        words.extend(model_words(model_id, values))
    if end_marker:
        words.extend([0xFFFF, 0])
    return {base + i: w for i, w in enumerate(words)}


COMMON: tuple[int, dict[str, int | float | str]] = (
    1,
    {"Mn": "heliod", "Md": "fake inverter", "SN": "HX-0001", "Vr": "1.0", "DA": 1},
)
