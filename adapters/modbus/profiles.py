"""Device profiles: register maps as data, one TOML file per device in config/profiles/."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from heliod.adapters.errors import PermanentError
from heliod.adapters.modbus.settings import MAX_REGISTERS_PER_READ, RegisterSpec
from heliod.adapters.modbus.sunspec_models import SUNSPEC_TYPES

PROFILE_PACKAGE = "heliod.profiles"
REGISTER_KEYS = {
    "field",
    "address",
    "kind",
    "type",
    "word_order",
    "scale",
    "unit",
    "scale_register",
    "not_implemented",
    "sunspec_type",
    "description",
}
_PROFILE_KEYS = {
    "name",
    "manufacturer",
    "models",
    "source",
    "notes",
    "default_unit_id",
    "max_read",
    "max_gap",
    "connect_delay",
    "registers",
}


@dataclass(frozen=True, slots=True)
class Profile:
    """A device's register map and the quirks needed to read it."""

    key: str  # file name without .toml
    name: str
    manufacturer: str
    source: str  # the published document the addresses come from
    registers: tuple[RegisterSpec, ...]
    max_read: int = MAX_REGISTERS_PER_READ
    max_gap: int = 0
    connect_delay_s: float = 0.0
    default_unit_id: int = 1


def parse_duration_s(text: str) -> float:
    """Seconds in a duration string: "500ms", "1s", "2m", "1h", "1d" or a sum like "1m30s"."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text.replace(" ", ""))
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f'not a duration: {text!r} (use e.g. "500ms", "1s", "5m")')
    factors = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    return sum(float(n) * factors[u] for n, u in parts)


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PermanentError(f"{where}: must be finite, got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        # A TOML float is a binary float: scales must be written as decimal strings.
        raise PermanentError(f'{where}: must be a decimal string such as "0.1", got {value!r}')
    try:
        result = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise PermanentError(f"{where}: not a decimal number: {value!r}") from None
    if not result.is_finite():
        raise PermanentError(f"{where}: must be finite, got {value!r}")
    return result


def register_from_mapping(data: dict[str, Any], where: str) -> RegisterSpec:
    """A RegisterSpec from a TOML table (profile file or inline `registers` of a device)."""
    unknown = set(data) - REGISTER_KEYS
    if unknown:
        raise PermanentError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("field", "address"):
        if key not in data:
            raise PermanentError(f"{where}.{key}: required")
    type_ = str(data.get("type", "u16"))
    not_implemented = tuple(int(v) for v in data.get("not_implemented", ()))
    if "sunspec_type" in data:
        sunspec_type = str(data["sunspec_type"])
        if sunspec_type not in SUNSPEC_TYPES:
            raise PermanentError(f"{where}.sunspec_type: unknown SunSpec type {sunspec_type!r}")
        type_, _width, sentinel = SUNSPEC_TYPES[sunspec_type]
        if sentinel is not None:
            not_implemented = (*not_implemented, sentinel)
    scale_register = data.get("scale_register")
    spec = RegisterSpec(
        field=str(data["field"]),
        address=int(data["address"]),
        kind=data.get("kind", "holding"),
        type=type_,
        word_order=data.get("word_order", "big"),
        scale=_decimal(data.get("scale", "1"), f"{where}.scale"),
        unit=str(data.get("unit", "")),
        scale_register=None if scale_register is None else int(scale_register),
        not_implemented=not_implemented,
    )
    spec.validate(where)
    return spec


def parse_profile(key: str, text: str) -> Profile:
    """A Profile from the text of a profile file; PermanentError names the bad key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PermanentError(f"profile {key}: invalid TOML: {exc}") from None
    unknown = set(data) - _PROFILE_KEYS
    if unknown:
        raise PermanentError(f"profile {key}: unknown key(s) {', '.join(sorted(unknown))}")
    for required in ("name", "source", "registers"):
        if not data.get(required):
            raise PermanentError(f"profile {key}.{required}: required")
    registers = tuple(
        register_from_mapping(r, f"profile {key}.registers[{i}]")
        for i, r in enumerate(data["registers"])
    )
    fields = [r.field for r in registers]
    if len(set(fields)) != len(fields):
        raise PermanentError(f"profile {key}.registers: a field appears twice")
    try:
        delay = parse_duration_s(str(data.get("connect_delay", "0s")))
    except ValueError as exc:
        raise PermanentError(f"profile {key}.connect_delay: {exc}") from None
    max_read = int(data.get("max_read", MAX_REGISTERS_PER_READ))
    if not 1 <= max_read <= MAX_REGISTERS_PER_READ:
        raise PermanentError(f"profile {key}.max_read: must be 1..125, got {max_read}")
    return Profile(
        key=key,
        name=str(data["name"]),
        manufacturer=str(data.get("manufacturer", "")),
        source=str(data["source"]),
        registers=registers,
        max_read=max_read,
        max_gap=int(data.get("max_gap", 0)),
        connect_delay_s=delay,
        default_unit_id=int(data.get("default_unit_id", 1)),
    )


def profile_key(name: str) -> str:
    """The file stem a config's `profile` names ("eastron_sdm630" or "eastron_sdm630.toml")."""
    return name.removesuffix(".toml")


def list_profiles() -> list[str]:
    """Keys of the profiles shipped in config/profiles."""
    folder = resources.files(PROFILE_PACKAGE)
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_profile_file(path: str | Path) -> Profile:
    """A profile from a local file (`profile = "myprofile.toml"`); PermanentError if unreadable."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PermanentError(f"profile file {file}: {exc.strerror or exc}") from None
    return parse_profile(file.stem, text)


def load_profile(name: str) -> Profile:
    """The shipped profile called `name`, or the file `name` points at; PermanentError if none."""
    key = profile_key(name)
    # The config resolves a file profile to an absolute path; a bare "x.toml" that is not
    # shipped is a file relative to the working directory (`heliod read` without -c).
    shipped = re.fullmatch(r"[a-z0-9_]+", key) is not None
    path = resources.files(PROFILE_PACKAGE) / f"{key}.toml"
    if "/" in name or os.sep in name or (not (shipped and path.is_file()) and Path(name).is_file()):
        return load_profile_file(name)
    if not shipped:
        raise PermanentError(f"profile {name!r}: not a profile name nor a profile file")
    if not path.is_file():
        known = ", ".join(list_profiles())
        raise PermanentError(f"profile {name!r}: no such profile (known: sunspec, custom, {known})")
    return parse_profile(key, path.read_text(encoding="utf-8"))
