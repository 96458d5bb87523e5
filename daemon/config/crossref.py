"""Checks between entries of the file: unique ids, energy devices, units, shared links.

They run on the parsed TOML, before and independently of the per-value validation, so a
file with both kinds of mistakes is refused with all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from heliod.daemon.config.errors import Loc, format_loc, show
from heliod.rewards.readings import ENERGY, POWER
from heliod.rewards.units import ENERGY_UNITS, POWER_UNITS

Problem = tuple[Loc, str]


def _tables(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                yield i, item


def _produces_energy(device: Mapping[str, Any]) -> bool:
    protocol = device.get("protocol")
    if protocol == "mqtt":
        fields = device.get("fields")
        return isinstance(fields, Mapping) and ENERGY in fields
    if protocol == "modbus" and device.get("profile", "sunspec") == "custom":
        return any(r.get("field") == ENERGY for _, r in _tables(device.get("registers")))
    return True  # SunSpec and profiles define energy_wh


def _unit_fits(field: Any, unit: Any) -> str | None:
    if not isinstance(unit, str) or unit == "":
        return None  # "" = already in Wh / W; a wrong type is reported elsewhere
    if field == ENERGY and unit not in ENERGY_UNITS:
        return f"{ENERGY} needs an energy unit ({', '.join(ENERGY_UNITS)}), got {show(unit)}"
    if field == POWER and unit not in POWER_UNITS:
        return f"{POWER} needs a power unit ({', '.join(POWER_UNITS)}), got {show(unit)}"
    return None


def _device_fields(loc: Loc, device: Mapping[str, Any]) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for j, register in _tables(device.get("registers")):
        field = register.get("field")
        if isinstance(field, str):
            if field in seen:
                yield (
                    (*loc, "registers", j, "field"),
                    (f"duplicate field {show(field)} (also registers[{seen[field]}])"),
                )
            seen.setdefault(field, j)
        if message := _unit_fits(field, register.get("unit")):
            yield (*loc, "registers", j, "unit"), message
    fields = device.get("fields")
    if device.get("protocol") == "mqtt" and isinstance(fields, Mapping):
        for name, spec in fields.items():
            if isinstance(spec, Mapping) and (message := _unit_fits(name, spec.get("unit"))):
                yield (*loc, "fields", name, "unit"), message


def _energy_devices(
    i: int, plant: Mapping[str, Any], owners: Mapping[str, tuple[int, Mapping[str, Any]]]
) -> Iterator[Problem]:
    listed: set[str] = set()
    energy = plant.get("energy_devices")
    for j, device_id in enumerate(energy if isinstance(energy, list) else []):
        loc: Loc = ("plants", i, "energy_devices", j)
        if not isinstance(device_id, str):
            continue
        if device_id in listed:
            yield loc, f"{show(device_id)} is listed twice"
            continue
        listed.add(device_id)
        owner = owners.get(device_id)
        if owner is None:
            yield loc, f"no device {show(device_id)} in this plant"
        elif owner[0] != i:
            yield loc, f"{show(device_id)} is a device of plants[{owner[0]}], not of this plant"
        elif not _produces_energy(owner[1]):
            yield loc, f"device {show(device_id)} has no {ENERGY} field"


def _goals(i: int, plant: Mapping[str, Any]) -> Iterator[Problem]:
    """Milestones are told apart by their mwh, challenges by their id, within a plant."""
    for table, key, what in (("milestones", "mwh", "milestone"), ("challenges", "id", "challenge")):
        first: dict[Any, int] = {}
        for j, entry in _tables(plant.get(table)):
            value = entry.get(key)
            if not isinstance(value, str | int) or isinstance(value, bool):
                continue  # a missing or mistyped value is reported by the table's own check
            if value in first:
                yield (
                    ("plants", i, table, j, key),
                    f"duplicate {what} {show(value)} (also {table}[{first[value]}])",
                )
            first.setdefault(value, j)


# A serial line's settings, with the defaults of daemon/config/devices.ModbusDevice.
_SERIAL_DEFAULTS = {"baudrate": 9600, "parity": "N", "stopbits": 1, "bytesize": 8}


def _links(data: Mapping[str, Any]) -> Iterator[Problem]:
    """Devices sharing one link must agree on it: one connection serves them all."""
    first: dict[tuple[Any, ...], tuple[Loc, Mapping[str, Any]]] = {}
    for i, plant in _tables(data.get("plants")):
        for j, device in _tables(plant.get("devices")):
            if device.get("protocol") != "modbus":
                continue
            loc: Loc = ("plants", i, "devices", j)
            transport = device.get("transport", "tcp")
            if transport == "rtu":
                key: tuple[Any, ...] = ("rtu", device.get("serial_port"))
            else:
                key = ("tcp", device.get("host"), device.get("port", 502))
            if any(not isinstance(part, str | int) for part in key):
                continue  # a missing or mistyped value is reported by the device's own check
            if key not in first:
                first[key] = (loc, device)
                continue
            other_loc, other = first[key]
            where = format_loc(other_loc)
            if transport != "rtu":
                if other.get("transport", "tcp") != transport:
                    yield (
                        (*loc, "transport"),
                        f"{show(transport)} on {key[1]}:{key[2]}, where {where} uses "
                        f"{show(other.get('transport', 'tcp'))}: one TCP endpoint speaks one "
                        "framing (Modbus TCP or RTU over TCP)",
                    )
                continue
            for name, default in _SERIAL_DEFAULTS.items():
                mine, theirs = device.get(name, default), other.get(name, default)
                if mine != theirs:
                    yield (
                        (*loc, name),
                        f"{show(mine)} on serial line {key[1]}, where {where} uses "
                        f"{show(theirs)}: devices on one line must share its settings",
                    )


def check_references(data: Mapping[str, Any]) -> list[Problem]:
    """Problems between entries of a parsed configuration, each with its location."""
    problems: list[Problem] = []
    plant_ids: dict[str, int] = {}
    owners: dict[str, tuple[int, Mapping[str, Any]]] = {}  # device id -> (plant index, table)
    first_at: dict[str, Loc] = {}
    mqtt_device: Loc | None = None
    for i, plant in _tables(data.get("plants")):
        plant_id = plant.get("id")
        if isinstance(plant_id, str):
            if plant_id in plant_ids:
                problems.append(
                    (
                        ("plants", i, "id"),
                        f"duplicate plant id {show(plant_id)} (also plants[{plant_ids[plant_id]}])",
                    )
                )
            plant_ids.setdefault(plant_id, i)
        for j, device in _tables(plant.get("devices")):
            loc: Loc = ("plants", i, "devices", j)
            device_id = device.get("id")
            if isinstance(device_id, str):
                if device_id in first_at:
                    problems.append(
                        (
                            (*loc, "id"),
                            f"duplicate device id {show(device_id)} "
                            f"(also {format_loc(first_at[device_id])})",
                        )
                    )
                else:
                    first_at[device_id] = loc
                    owners[device_id] = (i, device)
            if device.get("protocol") == "mqtt" and mqtt_device is None:
                mqtt_device = loc
            problems.extend(_device_fields(loc, device))
    for i, plant in _tables(data.get("plants")):
        problems.extend(_energy_devices(i, plant, owners))
        problems.extend(_goals(i, plant))
    problems.extend(_links(data))
    if mqtt_device is not None and not isinstance(data.get("mqtt"), Mapping):
        problems.append(((*mqtt_device, "protocol"), "an MQTT device needs the [mqtt] table"))
    names: dict[str, int] = {}
    api = data.get("api")
    for k, token in _tables(api.get("tokens") if isinstance(api, Mapping) else None):
        name = token.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(
                    (("api", "tokens", k, "name"), f"duplicate token name {show(name)}")
                )
            names.setdefault(name, k)
    return problems
