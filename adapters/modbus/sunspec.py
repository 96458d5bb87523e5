"""SunSpec discovery (marker, model chain) and decoding with scale factors.

Not-implemented values (SunSpec's 0xFFFF, 0x8000, acc 0, float NaN, and a
not-implemented scale factor) make a point absent, never 0: a counter that drops to 0
and back would look like a reset to the accountant.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from heliod.adapters.errors import PermanentError, RetryableError
from heliod.adapters.modbus.client import UnitReader
from heliod.adapters.modbus.registers import (
    SF_EXPONENTS,
    SF_RANGE,
    decode_number,
    raw_unsigned,
    scale_exponent,
    to_decimal,
)
from heliod.adapters.modbus.settings import MAX_REGISTERS_PER_READ
from heliod.adapters.modbus.sunspec_models import (
    ENERGY_MODEL_PREFERENCE,
    MODEL_LAYOUTS,
    SUNSPEC_TYPES,
    ModelLayout,
    Point,
)
from heliod.rewards.units import quantize, scaled, unit_factor

log = logging.getLogger(__name__)

SUNS_MARKER = (0x5375, 0x6E53)  # "SunS"
BASE_ADDRESSES = (40000, 0, 50000)  # SunSpec Modbus spec: the usual places of the marker
END_MODEL_ID = 0xFFFF
MAX_MODELS = 64  # a chain longer than this never ends: refuse it rather than walk forever
_MILLI = Decimal("0.001")
# An int64 × 10^10 with three decimals needs 33 digits: more than the default 28.
_WIDE = Context(prec=60, rounding=ROUND_HALF_EVEN)
_POW10 = tuple(10**k for k in range(14))  # 10^(sf + 3) for sf in -3..10
_EXACT = 10**28  # integers below this times 0.001 are exact in the default context
FIELD_UNITS = {
    "energy_wh": "Wh",
    "energy_import_wh": "Wh",
    "power_w": "W",
    "dc_power_w": "W",
    "apparent_power_va": "VA",
    "reactive_power_var": "var",
    "frequency_hz": "Hz",
    "temperature_c": "C",
}


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A model found in the chain: its id, the address of its ID register, its length L."""

    id: int
    address: int
    length: int


def discover(reader: UnitReader) -> tuple[int, list[ModelRef]]:
    """Find the SunSpec marker at 40000, 0 or 50000 and walk the model chain to its end."""
    timed_out: RetryableError | None = None
    for base in BASE_ADDRESSES:
        try:
            marker = reader.read_holding_registers(base, 2)
        except PermanentError:
            continue  # illegal address: the map is elsewhere
        except RetryableError as exc:
            # Some devices never answer a read of an address they do not have (no
            # exception response): the map may still be at the next base address.
            timed_out = timed_out or exc  # the first says most ("cannot connect")
            continue
        if tuple(marker) == SUNS_MARKER:
            return base, walk_models(reader, base + 2)
    if timed_out is not None:  # perhaps only down: retry at the next poll
        raise timed_out
    raise PermanentError('no SunSpec marker ("SunS") at 40000, 0 or 50000')


def walk_models(reader: UnitReader, address: int) -> list[ModelRef]:
    """The models from `address` to the end marker (0xFFFF); an endless chain is an error."""
    models: list[ModelRef] = []
    for _ in range(MAX_MODELS):
        if address > 0xFFFF - 1:
            raise PermanentError(f"SunSpec model chain runs past 65535 after {len(models)} models")
        try:
            model_id, length = reader.read_holding_registers(address, 2)
        except PermanentError:
            if not models:
                raise
            # Some devices end the chain with an unreadable address instead of 0xFFFF.
            log.info("SunSpec chain ends at unreadable address %d without end marker", address)
            return models
        if model_id == END_MODEL_ID:
            return models
        models.append(ModelRef(model_id, address, length))
        address += 2 + length
    raise PermanentError(f"SunSpec model chain has no end marker within {MAX_MODELS} models")


def read_model(reader: UnitReader, model: ModelRef, count: int | None = None) -> list[int]:
    """The model's registers from its ID register on (`count` of them, default all)."""
    total = 2 + model.length if count is None else count
    if total <= MAX_REGISTERS_PER_READ:
        return reader.read_holding_registers(model.address, total)
    words: list[int] = []
    for start in range(model.address, model.address + total, MAX_REGISTERS_PER_READ):
        n = min(MAX_REGISTERS_PER_READ, model.address + total - start)
        words.extend(reader.read_holding_registers(start, n))
    return words


def _number(point: Point, words: Sequence[int]) -> Decimal | None:
    reg_type, _width, not_implemented = SUNSPEC_TYPES[point.type]
    raw = raw_unsigned(words[point.offset : point.offset + point.width])
    if raw == not_implemented:
        return None
    return to_decimal(decode_number(raw, reg_type))


def _exponent(layout: ModelLayout, point: Point, words: Sequence[int]) -> int | None:
    if not point.sf:
        return 0
    sf = layout.point(point.sf)
    if sf.offset >= len(words):
        return None
    return scale_exponent(words[sf.offset])


def point_value(layout: ModelLayout, point: Point, words: Sequence[int]) -> Decimal | str | None:
    """A point's value with its scale factor applied, text for strings, None when absent."""
    if point.offset + point.width > len(words) or point.type == "pad":
        return None
    if point.type == "string":
        data = b"".join(
            w.to_bytes(2, "big") for w in words[point.offset : point.offset + point.width]
        )
        text = data.split(b"\x00", 1)[0].decode("latin-1").strip()
        return text or None
    number = _number(point, words)
    exponent = _exponent(layout, point, words)
    if number is None or exponent is None:
        return None
    if point.type == "f32":
        return quantize(number)  # its exact binary expansion is unreadable on a terminal
    return number.scaleb(exponent)


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """How one reading field is decoded from a model's registers (compiled once per model)."""

    field: str
    offset: int
    width: int
    reg_type: str
    not_implemented: int | None
    sf_offset: int | None
    unit: str
    counter_bits: int | None  # width of an unsigned energy counter, for its rollover
    signed_bits: int = 0  # 16 × width for a signed integer type (two's complement), else 0
    is_float: bool = False
    # The counter's range for each valid scale factor (2^bits × 10^sf), when counter_bits.
    counter_ranges: tuple[Decimal, ...] = ()


def compile_fields(layout: ModelLayout) -> tuple[FieldPlan, ...]:
    """The decoding plan of a model's reading fields."""
    plans = []
    for field, name in layout.fields:
        point = layout.point(name)
        reg_type, width, not_implemented = SUNSPEC_TYPES[point.type]
        sf_offset = layout.point(point.sf).offset if point.sf else None
        bits = 16 * width if field == "energy_wh" and reg_type.startswith("u") else None
        if unit_factor(FIELD_UNITS[field]) != 1:
            raise ValueError(f"{field}: integer fast path assumes a base unit")
        plans.append(
            FieldPlan(
                field,
                point.offset,
                width,
                reg_type,
                not_implemented,
                sf_offset,
                FIELD_UNITS[field],
                bits,
                16 * width if reg_type.startswith("i") else 0,
                reg_type.startswith("f"),
                tuple(Decimal(1 << bits).scaleb(sf) for sf in SF_RANGE) if bits else (),
            )
        )
    return tuple(plans)


def model_fields(
    layout: ModelLayout, words: Sequence[int], plans: Sequence[FieldPlan] | None = None
) -> tuple[dict[str, Decimal], Decimal | None]:
    """Reading fields in base units and the energy counter's range in Wh (None for floats)."""
    # Run at every poll of every SunSpec device: the checks are inlined (scale factor
    # words looked up, two's complement done here), which halves its instruction count.
    fields: dict[str, Decimal] = {}
    counter_range: Decimal | None = None
    n = len(words)
    for plan in plans if plans is not None else compile_fields(layout):
        o, width = plan.offset, plan.width
        if o + width > n:
            continue
        if width == 1:
            raw = words[o]
        elif width == 2:
            raw = (words[o] << 16) | words[o + 1]
        else:
            raw = raw_unsigned(words[o : o + width])
        if raw == plan.not_implemented:
            continue
        exponent = 0
        if (sf_offset := plan.sf_offset) is not None:
            if sf_offset >= n or (sf := SF_EXPONENTS.get(words[sf_offset])) is None:
                continue
            exponent = sf
        if plan.is_float:
            number = to_decimal(decode_number(raw, plan.reg_type))
            if number is None:
                continue
            # Binary float: its exact value, scaled, rounded once (docs/accounting.md).
            fields[plan.field] = scaled(number, Decimal(1).scaleb(exponent), plan.unit)
            continue
        if (bits := plan.signed_bits) and raw >> (bits - 1):
            raw -= 1 << bits
        # Integer × 10^sf is exact (SunSpec field units all have factor 1): in mWh/mW as
        # an integer, then three decimals; only exponents below -3 need rounding.
        if exponent >= -3:
            milli = raw * _POW10[exponent + 3]
            if -_EXACT < milli < _EXACT:  # within the default context's 28 digits
                fields[plan.field] = Decimal(milli) * _MILLI
            else:  # a 64-bit register with a large scale factor
                fields[plan.field] = _WIDE.multiply(Decimal(milli), _MILLI)
        else:
            value = Decimal(raw).scaleb(exponent)
            fields[plan.field] = value.quantize(_MILLI, context=_WIDE)
        if plan.counter_ranges:
            counter_range = plan.counter_ranges[exponent - SF_RANGE.start]
    return fields, counter_range


def fields_span(layout: ModelLayout) -> int:
    """Registers to read from the ID register on to cover every field and its scale factor."""
    end = 0
    for _field, name in layout.fields:
        point = layout.point(name)
        end = max(end, point.offset + point.width)
        if point.sf:
            end = max(end, layout.point(point.sf).offset + 1)
    return end


def choose_energy_model(models: Sequence[ModelRef]) -> ModelRef:
    """The model a device's reading comes from: an inverter, else DER 701, else a meter."""
    for model_id in ENERGY_MODEL_PREFERENCE:
        for model in models:
            if model.id == model_id:
                return model
    found = ", ".join(str(m.id) for m in models) or "none"
    raise PermanentError(f"no SunSpec inverter, DER or meter model (found models: {found})")


class SunSpecSource:
    """Reading fields of a SunSpec device; discovers once, rediscovers when the map changes."""

    def __init__(self) -> None:
        self.model: ModelRef | None = None
        self._layout = MODEL_LAYOUTS[103]
        self._plans: tuple[FieldPlan, ...] = ()
        self._span = 0

    def read(self, reader: UnitReader) -> tuple[dict[str, Decimal], Decimal | None]:
        """One poll: the chosen model's fields and counter range."""
        if self.model is None:
            _base, models = discover(reader)
            self.model = choose_energy_model(models)
            self._layout = MODEL_LAYOUTS[self.model.id]
            self._plans = compile_fields(self._layout)
            self._span = min(2 + self.model.length, fields_span(self._layout))
        model = self.model
        try:
            words = read_model(reader, model, self._span)
        except PermanentError:
            self.model = None
            raise
        if words[0] != model.id or words[1] != model.length:
            self.model = None
            raise RetryableError(
                f"SunSpec model {model.id} at {model.address} now reads as "
                f"{words[0]}/{words[1]}: map changed, rediscovering"
            )
        return model_fields(self._layout, words, self._plans)
