"""Register decoding per type and word order, and grouping of registers into few reads."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from heliod.adapters.modbus.settings import (
    MAX_REGISTERS_PER_READ,
    TYPE_WIDTHS,
    RegisterKind,
    RegisterSpec,
)
from heliod.rewards.units import scaled, unit_factor

SF_NOT_IMPLEMENTED = 0x8000  # SunSpec sunssf "not implemented"
SF_RANGE = range(-10, 11)  # SunSpec: scale factors are within -10..10


def raw_unsigned(words: Sequence[int], word_order: str = "big") -> int:
    """The registers as one unsigned integer; bytes inside a register are always big-endian."""
    ordered = words if word_order == "big" else reversed(words)
    value = 0
    for word in ordered:
        value = (value << 16) | (word & 0xFFFF)
    return value


def to_signed(value: int, bits: int) -> int:
    """Two's complement reading of an unsigned `bits`-wide value."""
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def decode_number(raw: int, type_: str) -> int | float:
    """Interpret the unsigned raw value of a register type as int or binary float."""
    bits = TYPE_WIDTHS[type_] * 16
    if type_ == "f32":
        return float(struct.unpack(">f", raw.to_bytes(4, "big"))[0])
    if type_ == "f64":
        return float(struct.unpack(">d", raw.to_bytes(8, "big"))[0])
    if type_.startswith("i"):
        return to_signed(raw, bits)
    return raw


def encode_number(value: int | float, type_: str, word_order: str = "big") -> list[int]:
    """Registers holding `value` (the inverse of decoding; used by scan tests and fakes)."""
    width = TYPE_WIDTHS[type_]
    if type_ == "f32":
        raw = int.from_bytes(struct.pack(">f", value), "big")
    elif type_ == "f64":
        raw = int.from_bytes(struct.pack(">d", value), "big")
    else:
        raw = int(value) & ((1 << (16 * width)) - 1)
    words = [(raw >> (16 * (width - 1 - i))) & 0xFFFF for i in range(width)]
    return words if word_order == "big" else words[::-1]


def to_decimal(value: int | float) -> Decimal | None:
    """Exact Decimal of a decoded number; None for NaN and infinities (absent, never 0)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(value)


# The register word of every valid scale factor (two's complement) and its exponent.
SF_EXPONENTS = {exponent & 0xFFFF: exponent for exponent in SF_RANGE}


def scale_exponent(raw: int) -> int | None:
    """A sunssf register's exponent, or None when it is not implemented or out of range."""
    return SF_EXPONENTS.get(raw)  # 0x8000 (not implemented) is not a valid exponent's word


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: `count` registers of `kind` from `start`."""

    kind: RegisterKind
    start: int
    count: int


def plan_reads(
    spans: Iterable[tuple[RegisterKind, int, int]],
    max_read: int = MAX_REGISTERS_PER_READ,
    max_gap: int = 0,
) -> list[Block]:
    """Merge (kind, address, width) spans into the fewest blocks of at most `max_read`.

    Spans closer than `max_gap` registers share a block; the default 0 never reads an
    address nobody asked for, since some devices (SMA) answer "illegal address" for gaps.
    """
    blocks: list[Block] = []
    for kind in ("holding", "input"):
        ranges = sorted((a, a + w) for k, a, w in spans if k == kind)
        start = end = -1
        for lo, hi in ranges:
            if start >= 0 and lo <= end + max_gap and max(hi, end) - start <= max_read:
                end = max(end, hi)
                continue
            if start >= 0:
                blocks.append(Block(kind, start, end - start))
            start, end = lo, hi
        if start >= 0:
            blocks.append(Block(kind, start, end - start))
    return blocks


def split_block(block: Block, max_read: int = MAX_REGISTERS_PER_READ) -> list[Block]:
    """The block cut into requests of at most `max_read` registers."""
    return [
        Block(block.kind, a, min(max_read, block.start + block.count - a))
        for a in range(block.start, block.start + block.count, max_read)
    ]


RegisterImage = Mapping[tuple[str, int], int]  # (kind, address) → register value


def read_spec(spec: RegisterSpec, image: RegisterImage) -> Decimal | None:
    """The spec's value in base units from a register image, or None when absent."""
    words = [image[(spec.kind, spec.address + i)] for i in range(spec.width)]
    raw = raw_unsigned(words, spec.word_order)
    if raw in spec.not_implemented:
        return None
    number = to_decimal(decode_number(raw, spec.type))
    if number is None:
        return None
    scale = spec.scale
    if spec.scale_register is not None:
        exponent = scale_exponent(image[(spec.kind, spec.scale_register)])
        if exponent is None:
            return None
        scale = scale.scaleb(exponent)
    return scaled(number, scale, spec.unit)


def counter_range_wh(spec: RegisterSpec, image: RegisterImage) -> Decimal | None:
    """2^bits × scale × unit factor of an unsigned integer counter (its range), else None."""
    if not spec.type.startswith("u"):
        return None
    scale = spec.scale
    if spec.scale_register is not None:
        exponent = scale_exponent(image[(spec.kind, spec.scale_register)])
        if exponent is None:
            return None
        scale = scale.scaleb(exponent)
    return Decimal(1 << (16 * spec.width)) * scale * unit_factor(spec.unit)


def spans_of(spec: RegisterSpec) -> list[tuple[RegisterKind, int, int]]:
    """The register spans a spec needs: its value and, if any, its scale-factor register."""
    spans: list[tuple[RegisterKind, int, int]] = [(spec.kind, spec.address, spec.width)]
    if spec.scale_register is not None:
        spans.append((spec.kind, spec.scale_register, 1))
    return spans
