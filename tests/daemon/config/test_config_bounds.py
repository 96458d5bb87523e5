"""Every number of the configuration has a range, the platform secret is required, and no
file, however hostile, gets anything but a ConfigError out of the loader."""

from __future__ import annotations

import copy
import os
import re
import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heliod.daemon.config import ConfigError, ModbusDevice, load_config, validate_config
from heliod.rewards.energy import Bound

from .test_config import BASE, EXAMPLE, load, problems

PLATFORM = '[platform]\npush_url = "https://p.example/e"\n'
NAMED = PLATFORM + 'secret_file = "platform.secret"\n'


# --- the platform secret (never an empty signing key) -----------------------------------


def test_platform_without_a_secret_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, PLATFORM + BASE) == [
        "platform.secret_file: required: the file holding the platform secret "
        "(or $HELIOD_PLATFORM_SECRET)"
    ]
    secret = tmp_path / "platform.secret"
    assert problems(tmp_path, NAMED + BASE) == [
        f"platform.secret_file: cannot read {secret}: No such file or directory"
    ]
    for empty in ("", "\n", "\r\n"):
        secret.write_bytes(empty.encode())
        assert problems(tmp_path, NAMED + BASE) == [
            f"platform.secret_file: required: {secret} is empty (or set $HELIOD_PLATFORM_SECRET)"
        ]
    with pytest.raises(ConfigError, match=r"^platform\.secret_file: required"):
        load(tmp_path, NAMED + BASE, env={"HELIOD_PLATFORM_SECRET": ""})  # empty: unset


def test_platform_secret_from_the_variable_or_the_file(tmp_path: Path) -> None:
    config = load(tmp_path, PLATFORM + BASE, env={"HELIOD_PLATFORM_SECRET": "from-env"})
    assert config.secret("platform.secret") == "from-env"
    secret = tmp_path / "platform.secret"
    secret.write_text("from-file\n", encoding="utf-8")
    config = load(tmp_path, NAMED + BASE)
    assert config.secret("platform.secret") == "from-file"
    secret.write_text("", encoding="utf-8")  # emptied while the daemon runs: still no empty key
    with pytest.raises(ConfigError, match=r"^platform\.secret_file: required: .* is empty"):
        config.secret("platform.secret")


# --- every number has a range -----------------------------------------------------------

CUSTOM = """
[[plants.devices]]
id = "meter2"
protocol = "modbus"
host = "10.0.0.2"
profile = "custom"

[[plants.devices.registers]]
field = "energy_wh"
address = 0
type = "u32"
"""
RANGES = [
    (
        ("capacity_kw = 100", 'capacity_kw = "1e999999999"'),
        "plants[0].capacity_kw: must be > 0 and ≤ 10^7 with at most 3 decimal places, "
        "got 1E+999999999",
    ),
    (
        ("capacity_kw = 100", "capacity_kw = 0.0005"),
        "plants[0].capacity_kw: has more than 3 decimal places, got 0.0005 (refused, never rounded)",
    ),
    (
        ('tokens_per_mwh = "1"', 'tokens_per_mwh = "1e5000"'),
        "plants[0].reward.tokens_per_mwh: must be > 0 and ≤ 10^18 with at most 18 decimal "
        "places, got 1E+5000",
    ),
    (
        ('tokens_per_mwh = "1"', 'tokens_per_mwh = "1E-999999"'),
        "plants[0].reward.tokens_per_mwh: has more than 18 decimal places, got 1E-999999 "
        "(refused, never rounded)",
    ),
    (
        ("capacity_kw = 100", "capacity_kw = 100\nmax_overload = 100.5"),
        "plants[0].max_overload: must be 1..100 with at most 3 decimal places, got 100.5",
    ),
    (
        ('host = "10.0.0.1"', 'host = "10.0.0.1"\npoll_interval = "99999999999999999999d"'),
        'plants[0].devices[0].poll_interval: must be at most 36500d, got "99999999999999999999d"',
    ),
    (
        ('host = "10.0.0.1"', 'host = "10.0.0.1"\ntimeout = "36500d1ms"'),
        'plants[0].devices[0].timeout: must be at most 36500d, got "36500d1ms"',
    ),
    (
        ('host = "10.0.0.1"', 'host = "10.0.0.1"\ntimeout = "1' + "0" * 5000 + 's"'),
        'plants[0].devices[0].timeout: must be at most 36500d, got "1'
        + "0" * 59
        + "…"
        + "0" * 19
        + 's (5002 characters)"',
    ),
    (
        ('type = "u32"', 'type = "u32"\nscale = "0.0000000001"'),
        "plants[0].devices[1].registers[0].scale: has more than 9 decimal places, "
        "got 1E-10 (refused, never rounded)",
    ),
    (
        ('type = "u32"', 'type = "u32"\nscale = -1e10'),
        "plants[0].devices[1].registers[0].scale: must be -10^9..10^9 with at most 9 decimal "
        "places, got -1E+10",
    ),
]


@pytest.mark.parametrize(("change", "line"), RANGES)
def test_a_number_out_of_range_is_one_line(
    tmp_path: Path, change: tuple[str, str], line: str
) -> None:
    text = (BASE + CUSTOM).replace(*change)
    assert problems(tmp_path, text) == [line]


def test_numbers_at_their_bounds_are_taken_exactly(tmp_path: Path) -> None:
    text = (BASE + CUSTOM).replace("capacity_kw = 100", "capacity_kw = 10000000")
    text = text.replace('tokens_per_mwh = "1"', 'tokens_per_mwh = "1000000000000000000"')
    text = text.replace("[plants.reward]", "[plants.reward]\ndecimals = 0")
    text = text.replace('type = "u32"', 'type = "u32"\nscale = "-0.000000001"')
    text = text.replace('host = "10.0.0.1"', 'host = "10.0.0.1"\npoll_interval = "36500d"')
    config = load(tmp_path, text)
    plant = config.plants[0]
    assert plant.capacity_kw == 10**7
    assert plant.reward.units_per_mwh == 10**18
    meter = plant.device("meter2")
    assert isinstance(meter, ModbusDevice)
    assert meter.registers[0].scale == Decimal("-1E-9")
    assert plant.device("inv1").expected_interval == timedelta(days=36500)
    # Trailing zeros are no digits of a value: taken, not refused.
    long_one = '"1.' + "0" * 300 + '"'
    config = load(tmp_path, BASE.replace('"1"', long_one))
    assert config.plants[0].reward.units_per_mwh == 10**8


def test_a_long_tokens_per_mwh_is_refused_not_rounded(tmp_path: Path) -> None:
    """A 100-digit context used to round this to exactly 1, a whole number of units."""
    text = BASE.replace('tokens_per_mwh = "1"', 'tokens_per_mwh = "1.' + "0" * 150 + '1"')
    text = text.replace("[plants.reward]", "[plants.reward]\ndecimals = 18")
    assert problems(tmp_path, text) == [
        "plants[0].reward.tokens_per_mwh: has more than 18 decimal places, got 1."
        + "0" * 58
        + "…"
        + "0" * 19
        + "1 (153 characters) (refused, never rounded)"
    ]


def test_toml_the_parser_cannot_hold_is_a_config_error(tmp_path: Path) -> None:
    huge = BASE.replace("capacity_kw = 100", "capacity_kw = " + "9" * 5000)
    assert problems(tmp_path, huge) == [
        f"{tmp_path / 'heliod.toml'}: invalid TOML: an integer with thousands of digits"
    ]
    deep = BASE + "x = " + "[" * 100_000 + "\n"
    assert problems(tmp_path, deep) == [
        f"{tmp_path / 'heliod.toml'}: invalid TOML: arrays or tables nested too deeply"
    ]


# --- fuzzing: only ConfigError ever leaves the loader ------------------------------------

EXAMPLES = int(os.environ.get("HELIOD_HYPOTHESIS_EXAMPLES", "300"))
ENV = {"HELIOD_PLATFORM_SECRET": "k"}


def _base() -> dict[str, Any]:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"), parse_float=Decimal)
    data["plants"][0]["devices"].append(tomllib.loads(CUSTOM)["plants"]["devices"][0])
    return data


BASE_DATA = _base()


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and array item of the document, tables included."""
    out = [at] if at else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*at, i))
    return out


PATHS = _paths(BASE_DATA)
DURATION = re.compile(r"(\d+(ms|s|m|h|d))+")
TRICKY = [
    "99999999999999999999d",
    "0ms",
    "36500d1ms",
    "1e5000",
    "1e999999999",
    "1E-999999",
    "-0",
    "NaN",
    "-Infinity",
    "0x10",
    "1_000",
    "",
    " ",
    "\0",
    "../" * 40,
    "1" * 5000,
    "sqlite:///\0",
    "postgresql+psycopg://h:99999/db",
    "mqtt://h:0",
    "http://[::1",
]
DECIMALS = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), min_size=1, max_size=40),
    st.integers(-(10**9), 10**9),
)
SCALARS = st.one_of(
    st.integers(min_value=-(10**4000), max_value=10**4000),  # TOML: below int()'s limit
    st.decimals(allow_nan=True, allow_infinity=True),
    DECIMALS,
    st.sampled_from(TRICKY),
    st.from_regex(r"\d{1,25}(ms|s|m|h|d)", fullmatch=True),
    st.text(max_size=20),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**4000), max_value=10**4000),
    DECIMALS,
    st.sampled_from(TRICKY[3:12]),
    DECIMALS.map(str),
)
DURATIONS = st.one_of(
    st.from_regex(r"(\d{1,25}(ms|s|m|h|d)){1,3}", fullmatch=True), st.sampled_from(TRICKY[:3])
)


def _value_for(path: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """Values of the key's own kind most of the time (where its checks are), any otherwise."""
    node: Any = BASE_DATA
    for part in path:
        node = node[part]
    if isinstance(node, Decimal | int) and not isinstance(node, bool):
        return st.one_of(NUMBERS, NUMBERS, VALUES)
    if isinstance(node, str) and DURATION.fullmatch(node):
        return st.one_of(DURATIONS, DURATIONS, VALUES)
    return VALUES


CHANGES = st.lists(
    st.sampled_from(PATHS).flatmap(lambda p: st.tuples(st.just(p), _value_for(p))),
    min_size=1,
    max_size=4,
)


def _mutated(changes: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    """The base document with each change applied where its path still leads."""
    data = copy.deepcopy(BASE_DATA)
    for path, value in changes:
        node: Any = data
        for part in path[:-1]:
            node = _child(node, part)
        if _child(node, path[-1]) is not None:
            node[path[-1]] = value
    return data


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict) and isinstance(part, str):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


@settings(max_examples=EXAMPLES, deadline=None)
@given(CHANGES)
def test_fuzzed_documents_give_a_config_or_a_config_error(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    try:
        config = validate_config(_mutated(changes), EXAMPLE, ENV)
    except ConfigError as exc:
        problems = exc.problems
        assert problems and all(p and "\n" not in p for p in problems)
        return
    # What the daemon derives at start from a valid file works too.
    for plant in config.plants:
        assert plant.reward.units_per_mwh > 0
        Bound.of(plant.capacity_kw, plant.max_overload)
        for device in plant.devices:
            assert device.expected_interval > timedelta(0)
            for register in getattr(device, "registers", []):
                register.counter_range_wh  # noqa: B018 - computed on demand


KEYS = sorted({str(p[-1]) for p in PATHS if isinstance(p[-1], str)})
LITERALS = st.one_of(
    st.from_regex(r"[+-]?\d{1,30}(\.\d{0,30})?([eE][+-]?\d{1,12})?", fullmatch=True),
    st.sampled_from(TRICKY).map(lambda t: '"' + t.replace("\0", "") + '"'),
    st.from_regex(r"\d{1,25}(ms|s|m|h|d)", fullmatch=True).map(lambda t: f'"{t}"'),
    st.text(max_size=30),
)
LINES = st.lists(
    st.tuples(st.sampled_from(KEYS), LITERALS).map(lambda kv: f"{kv[0]} = {kv[1]}"), max_size=4
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(LINES)
def test_fuzzed_files_give_a_config_or_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str]
) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzzed.toml"
    path.write_text(BASE + "\n".join(lines) + "\n", encoding="utf-8")
    try:
        load_config(path, env=ENV)
    except ConfigError as exc:
        problems = exc.problems
        assert problems
