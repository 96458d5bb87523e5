"""Device payloads to readings: strict JSON with exact Decimals (docs/accounting.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from heliod.adapters.errors import PermanentError
from heliod.adapters.mqtt.settings import DEFAULT_MAX_PACKET_SIZE, DeviceSettings
from heliod.rewards.readings import ENERGY, Reading
from heliod.rewards.units import MAX_ENERGY_WH, UnitError, scaled_by, unit_factor

# The default bound of a payload: the default Maximum Packet Size heliod announces. A
# broker that ignores it still cannot make heliod parse a megabyte: such a payload is
# refused before it is decoded.
MAX_PAYLOAD_BYTES = DEFAULT_MAX_PACKET_SIZE
# A raw number with more than 30 digits before the point is no meter value; refusing it
# before scaling keeps exponents like 1e999999999 away from the arithmetic.
_MAX_ADJUSTED_EXPONENT = 30
# Unix seconds from 2000 to 2100: a millisecond epoch (1.7e12) lands far outside.
_MIN_EPOCH = Decimal(946_684_800)
_MAX_EPOCH = Decimal(4_102_444_800)


class PayloadError(ValueError):
    """A message that yields no reading; `reason` is a stable label for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _refuse_constant(name: str) -> Any:
    raise PayloadError("non_finite_literal", f"JSON literal {name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise PayloadError("duplicate_key", f"key {key!r} appears twice")
            seen.add(key)
    return obj


# Stateless, so one instance serves every thread; json.loads would build one per call.
_STRICT_JSON = json.JSONDecoder(
    parse_float=Decimal,
    parse_int=Decimal,
    parse_constant=_refuse_constant,
    object_pairs_hook=_unique_keys,
)


def parse_json(payload: bytes | bytearray, limit: int = MAX_PAYLOAD_BYTES) -> Any:
    """Decode a payload strictly: numbers as exact Decimals, no NaN/Infinity, no duplicate keys."""
    if len(payload) > limit:
        raise PayloadError("too_large", f"{len(payload)} bytes > {limit}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("not_json", "payload is not UTF-8") from None
    try:
        return _STRICT_JSON.decode(text)
    except json.JSONDecodeError as exc:
        raise PayloadError("not_json", f"{exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise PayloadError("not_json", "nested too deeply") from None


def _compile_path(path: str) -> tuple[str, ...]:
    return tuple(path.split(".")) if path else ()


def _lookup(doc: Any, path: tuple[str, ...], dotted: str) -> Any:
    node = doc
    for part in path:
        # Exact type checks: parse_json only makes plain dicts and lists (hot path).
        if type(node) is dict:
            if part in node:
                node = node[part]
                continue
        elif type(node) is list and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        raise PayloadError("missing_key", f"no {dotted!r} in payload")
    return node


def _number(value: Any, dotted: str) -> Decimal:
    # bool is not a number here even though JSON true/false would otherwise sneak through.
    if not isinstance(value, Decimal):
        kind = type(value).__name__ if value is not None else "null"
        raise PayloadError("not_a_number", f"{dotted or 'payload'!r} is a {kind}, not a number")
    return value


class PayloadDecoder:
    """Turns one device's payloads into readings; built once per device at start."""

    def __init__(self, device: DeviceSettings) -> None:
        self.device_id = device.id
        # (name, path, dotted path, unit, its factor, is the energy counter): fixed at start.
        self._fields: list[tuple[str, tuple[str, ...], str, str, Decimal, bool]] = []
        for name, spec in device.fields.items():
            try:
                factor = unit_factor(spec.unit)
            except UnitError as exc:
                raise PermanentError(f"device {device.id}: field {name}: {exc}") from None
            path = _compile_path(spec.path)
            self._fields.append((name, path, spec.path, spec.unit, factor, name == ENERGY))
        self._ts_path = (
            _compile_path(device.timestamp_path) if device.timestamp_path is not None else None
        )
        self._ts_dotted = device.timestamp_path or ""
        try:
            self._zone = ZoneInfo(device.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PermanentError(
                f"device {device.id}: unknown timezone {device.timezone!r}"
            ) from exc

    def decode(self, payload: bytes | bytearray, arrival: datetime) -> Reading:
        """A reading from a raw payload, or PayloadError naming why not."""
        return self.extract(parse_json(payload), arrival)

    def extract(self, doc: Any, arrival: datetime) -> Reading:
        """A reading from an already parsed payload, or PayloadError naming why not."""
        fields: dict[str, Decimal] = {}
        for name, path, dotted, unit, factor, energy in self._fields:
            raw = doc
            for part in path:  # objects all the way down: the usual payload (hot path)
                if type(raw) is dict and part in raw:
                    raw = raw[part]
                else:  # arrays on the way, or a key missing: the general walk
                    raw = _lookup(doc, path, dotted)
                    break
            if type(raw) is not Decimal:
                raw = _number(raw, dotted)  # raises: only Decimal is a number here
            if not raw.is_finite() or raw.adjusted() > _MAX_ADJUSTED_EXPONENT:
                _refuse(raw, dotted)
            value = scaled_by(raw, factor)
            if energy and not 0 <= value <= MAX_ENERGY_WH:
                _refuse_energy(raw, value, unit, dotted)
            fields[name] = value
        ts = arrival if self._ts_path is None else self._timestamp(doc)
        return Reading(device=self.device_id, ts=ts, fields=fields)

    def _timestamp(self, doc: Any) -> datetime:
        assert self._ts_path is not None
        value = _lookup(doc, self._ts_path, self._ts_dotted)
        if isinstance(value, str):
            return parse_time(value.strip(), self._zone)
        if isinstance(value, Decimal):
            return from_unix_seconds(value)
        raise PayloadError("bad_timestamp", f"{self._ts_dotted!r} is neither text nor a number")


def _refuse(raw: Decimal, dotted: str) -> NoReturn:
    if not raw.is_finite():
        raise PayloadError("non_finite", f"{dotted or 'payload'!r} is {raw}")
    raise PayloadError("absurd", f"{dotted or 'payload'!r} = {raw} is out of range")


def _refuse_energy(raw: Decimal, value: Decimal, unit: str, dotted: str) -> NoReturn:
    # The store would reject these (docs/accounting.md); refused here, they are counted
    # per device, and a bad message never reaches the accounting path.
    if value < 0:
        raise PayloadError("negative", f"energy counter {dotted!r} = {raw} {unit} < 0")
    raise PayloadError("absurd", f"energy counter {dotted!r} = {raw} {unit} > 10^15 Wh")


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """ISO 8601 text (or Unix seconds as text) as an aware datetime; no offset = `zone`."""
    try:
        return from_unix_seconds(Decimal(text))
    except (InvalidOperation, ValueError):
        pass
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError(
            "bad_timestamp", f"{text!r} is neither ISO 8601 nor Unix seconds"
        ) from None
    if ts.tzinfo is None:
        # fold=0: in the repeated hour of a DST change the earlier instant is taken.
        ts = ts.replace(tzinfo=zone)
    return ts.astimezone(UTC)


def from_unix_seconds(value: Decimal) -> datetime:
    """Unix seconds (exact Decimal, microsecond resolution) as a UTC datetime."""
    if not value.is_finite() or not _MIN_EPOCH <= value <= _MAX_EPOCH:
        raise PayloadError("bad_timestamp", f"{value} is not Unix seconds between 2000 and 2100")
    whole = int(value)
    if whole == value:  # most devices send whole seconds
        return datetime.fromtimestamp(whole, UTC)
    micros = int(((value - whole) * 1_000_000).to_integral_value())
    return datetime.fromtimestamp(whole, UTC) + timedelta(microseconds=micros)
