"""Every register dump in tests/cases/ served by a real pymodbus server and polled by heliod.

A case folder holds what a device answered (`registers.json`), the device's keys as
written in heliod.toml (`device.toml`), the reading heliod must make of it
(`expected.json`) and a README.md saying what happened and where the data comes from.
tests/cases/README.md describes the format and how to add a capture from the field.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from heliod.adapters.modbus import ModbusDeviceSettings, read_device
from heliod.adapters.modbus.configured import settings_from_mapping
from tests.adapters.modbus.fakes import FakeUnit, Serve
from tests.adapters.modbus.sunspec_image import model_points, sunspec_image

CASES_DIR = Path(__file__).parents[2] / "cases"
FILES = ("README.md", "registers.json", "device.toml", "expected.json")
# What a case may say about its device; the test supplies id, transport, host and port.
DEVICE_KEYS = {"profile", "unit_id", "timeout", "retries", "registers"}
SUNS = (0x5375, 0x6E53)  # "SunS"
SUNSPEC_BASES = (40000, 0, 50000)
SCRUBBED = "SCRUBBED"


@dataclass(frozen=True)
class Case:
    """One folder of tests/cases/, read and checked."""

    name: str
    unit_id: int
    unit: FakeUnit
    device: dict[str, Any]
    fields: dict[str, str]
    counter_range_wh: str | None


def _words(runs: Mapping[str, list[int]], where: str) -> dict[int, int]:
    """{"40000": [w0, w1, …]} → {40000: w0, 40001: w1, …}; a word is 0..65535."""
    image: dict[int, int] = {}
    for start, words in runs.items():
        for i, word in enumerate(words):
            if not isinstance(word, int) or not 0 <= word <= 0xFFFF:
                raise ValueError(f"{where}[{start}][{i}]: not a 16-bit word: {word!r}")
            image[int(start) + i] = word
    return image


def load_case(folder: Path) -> Case:
    """A case folder as the test serves it; ValueError naming the file and key at fault."""
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"{folder.name}: missing {', '.join(missing)}")
    dump = json.loads((folder / "registers.json").read_text())
    holding = _words(dump.get("holding", {}), "registers.json: holding")
    inputs = _words(dump.get("input", {}), "registers.json: input")
    silent: set[int] = set()
    # A request that got no answer at all (a timeout): start address -> register count.
    for kind, requests in dump.get("no_answer", {}).items():
        image = holding if kind == "holding" else inputs
        for start, count in requests.items():
            silent.add(int(start))
            # Served, so the request reaches the unit, which then never answers it.
            for a in range(int(start), int(start) + int(count)):
                image.setdefault(a, 0)
    unit = FakeUnit(holding=holding, input=inputs)
    unit.silent_at = silent
    device = tomllib.loads((folder / "device.toml").read_text())
    unknown = set(device) - DEVICE_KEYS
    if unknown:
        raise ValueError(f"{folder.name}/device.toml: unknown key(s) {', '.join(sorted(unknown))}")
    expected = json.loads((folder / "expected.json").read_text())
    return Case(
        name=folder.name,
        unit_id=int(dump["unit_id"]),
        unit=unit,
        device=device,
        fields=dict(expected["fields"]),
        counter_range_wh=expected["counter_range_wh"],
    )


def sunspec_serial(holding: Mapping[int, int]) -> str | None:
    """The serial number (SN) of a SunSpec common model in a dump; None without one."""
    points = {p["name"]: p for p in model_points(1)}
    for base in SUNSPEC_BASES:
        if (holding.get(base), holding.get(base + 1)) != SUNS or holding.get(base + 2) != 1:
            continue
        sn = points["SN"]
        start = base + 2 + sn["offset"]
        raw = b"".join(
            holding.get(a, 0).to_bytes(2, "big") for a in range(start, start + sn["size"])
        )
        return raw.rstrip(b"\x00").decode("latin-1")
    return None


def case_folders() -> list[Path]:
    """Every case, by name."""
    return sorted(p for p in CASES_DIR.iterdir() if p.is_dir())


def test_the_cases_folder_holds_cases() -> None:
    assert len(case_folders()) >= 3  # so the parametrized test below cannot pass on nothing


@pytest.mark.parametrize("folder", case_folders(), ids=lambda p: p.name)
def test_case_is_documented_and_scrubbed(folder: Path) -> None:
    case = load_case(folder)
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# "), "README.md starts with a title saying what happened"
    assert "Source:" in readme, "README.md names where the data comes from (a 'Source:' line)"
    serial = sunspec_serial(case.unit.holding)
    assert serial is None or serial in ("", SCRUBBED), f"serial number not scrubbed: {serial!r}"


@pytest.mark.parametrize("folder", case_folders(), ids=lambda p: p.name)
def test_case_reading_is_exactly_the_expected_one(serve: Serve, folder: Path) -> None:
    case = load_case(folder)
    server = serve({case.unit_id: case.unit})
    settings: ModbusDeviceSettings = settings_from_mapping(
        {
            "timeout": "3s",  # unless the case says otherwise
            **case.device,
            "id": case.name,
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": server.port,
        }
    )
    reading = read_device(settings)
    assert {k: str(v) for k, v in reading.fields.items()} == case.fields
    expected_range = case.counter_range_wh
    assert reading.counter_range_wh == (None if expected_range is None else Decimal(expected_range))


def test_a_serial_number_left_in_a_dump_is_caught() -> None:
    for sn, found in (("HX-0001", "HX-0001"), (SCRUBBED, SCRUBBED), ("", "")):
        image = sunspec_image([(1, {"SN": sn})], base=50000)
        assert sunspec_serial(image) == found
    assert sunspec_serial({40000: 1}) is None
