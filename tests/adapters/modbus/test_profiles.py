"""Each shipped profile served as its device would, and its decoded values checked.

The register images below are written by hand from the manufacturers' documents (word
order, fixed-point gains, NaN patterns), not produced by the adapter's own encoder.
"""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest

from heliod.adapters.errors import PermanentError
from heliod.adapters.modbus import (
    ModbusDeviceSettings,
    RegisterSpec,
    list_profiles,
    load_profile,
    read_device,
)
from heliod.adapters.modbus.profiles import parse_profile
from heliod.adapters.modbus.registers import encode_number
from tests.adapters.modbus.fakes import FakeUnit, Serve
from tests.adapters.modbus.sunspec_image import model_words


def f32(x: float) -> list[int]:
    raw = struct.unpack(">I", struct.pack(">f", x))[0]
    return [raw >> 16, raw & 0xFFFF]


def block(start: int, end: int, values: dict[int, int]) -> dict[int, int]:
    """Registers start..end (inclusive) served, zero unless given."""
    return {a: values.get(a, 0) for a in range(start, end + 1)}


def words_at(address: int, words: list[int]) -> dict[int, int]:
    return {address + i: w for i, w in enumerate(words)}


def fixed_sunspec(model_id: int, values: dict[str, float | int]) -> dict[int, int]:
    """A SolarEdge/Fronius style map: common model of length 65, the model at 40069."""
    image = {40000: 0x5375, 40001: 0x6E53, 40002: 1, 40003: 65}
    image.update(dict.fromkeys(range(40004, 40069), 0))
    words = model_words(model_id, values)
    image.update(words_at(40069, [*words, 0xFFFF, 0]))  # the model, then the end marker
    return image


CASES: dict[str, tuple[FakeUnit, dict[str, str], str | None]] = {
    "eastron_sdm630": (
        FakeUnit(
            input=block(
                52,
                75,
                {
                    **words_at(52, f32(-2345.5)),  # the meter's sign: exporting is negative
                    **words_at(70, f32(50.02)),
                    **words_at(72, f32(12.5)),
                    **words_at(74, f32(123456.78)),  # float32: 123456.78125 kWh
                },
            )
        ),
        {
            "power_w": "2345.500",  # production
            "frequency_hz": "50.020",  # float32(50.02) = 50.020000457763671875
            "energy_import_wh": "12500.000",
            "energy_wh": "123456781.250",
        },
        None,
    ),
    "huawei_sun2000": (
        FakeUnit(
            holding={
                **block(
                    32064,
                    32087,
                    {
                        32064: 0,
                        32065: 5123,
                        32080: 0xFFFF,
                        32081: 0xFFF1,
                        32085: 5001,
                        32087: 0xFF9C,
                    },
                ),
                32106: 0x0001,
                32107: 0xE240,  # 123456 × 0.01 kWh
            }
        ),
        {
            "dc_power_w": "5123.000",
            "power_w": "-15.000",
            "frequency_hz": "50.010",
            "temperature_c": "-10.000",
            "energy_wh": "1234560.000",
        },
        str(2**32 * 10),
    ),
    "sungrow_sg_rt": (
        FakeUnit(
            input=block(
                5003,
                5035,
                {
                    5003: 0x1170,
                    5004: 0x0001,
                    5007: 421,
                    5016: 8000,
                    5017: 0,
                    5030: 0x86A0,
                    5031: 0x0001,
                    5035: 500,
                },
            )
        ),
        {
            "energy_wh": "70000000.000",  # 0x00011170 kWh, low word first
            "temperature_c": "42.100",
            "dc_power_w": "8000.000",
            "power_w": "100000.000",  # 0x000186A0 W
            "frequency_hz": "50.000",
        },
        str(2**32 * 1000),
    ),
    "sma_sunny_tripower": (
        FakeUnit(
            input={
                **words_at(30513, [0, 0, 0x02B0, 0x8A80]),  # 45_124_224 Wh
                **words_at(30775, [0x8000, 0x0000]),  # NaN at night
                **words_at(30803, [0, 5002]),
            }
        ),
        {"energy_wh": "45124224.000", "frequency_hz": "50.020"},
        str(2**64),
    ),
    "solaredge_inverter": (
        FakeUnit(
            holding=fixed_sunspec(
                103,
                {
                    "W": 31245,
                    "W_SF": -1,
                    "Hz": 4999,
                    "Hz_SF": -2,
                    "VA": 3130,
                    "VA_SF": 0,
                    "VAr": -44,
                    "VAr_SF": 0,
                    "WH": 45678901,
                    "WH_SF": 0,
                    "DCW": 3190,
                    "DCW_SF": 0,
                    "TmpSnk": 3870,
                    "Tmp_SF": -2,
                },
            )
        ),
        {
            "power_w": "3124.500",
            "frequency_hz": "49.990",
            "apparent_power_va": "3130.000",
            "reactive_power_var": "-44.000",
            "energy_wh": "45678901.000",
            "dc_power_w": "3190.000",
            "temperature_c": "38.700",
        },
        str(2**32),
    ),
    "fronius_symo_float": (
        FakeUnit(
            holding=fixed_sunspec(
                113,
                {
                    "W": 4321.25,
                    "Hz": 50.01,
                    "VA": 4400.0,
                    "VAr": -12.5,
                    "WH": 25000000.0,
                    "DCW": 4500.0,
                },
            )
        ),
        {
            "power_w": "4321.250",
            "frequency_hz": "50.010",  # float32(50.01) = 50.009998321533203125
            "apparent_power_va": "4400.000",
            "reactive_power_var": "-12.500",
            "energy_wh": "25000000.000",
            "dc_power_w": "4500.000",
        },
        None,
    ),
}


def test_every_shipped_profile_has_a_served_case() -> None:
    assert set(list_profiles()) == set(CASES)
    assert len(CASES) >= 5


@pytest.mark.parametrize("key", sorted(CASES))
def test_profile_is_documented(key: str) -> None:
    profile = load_profile(key)
    assert profile.source
    assert profile.name
    assert profile.manufacturer
    assert "energy_wh" in {r.field for r in profile.registers}
    assert load_profile(f"{key}.toml") == profile


@pytest.mark.parametrize("key", sorted(CASES))
def test_profile_decodes_its_register_map(serve: Serve, key: str) -> None:
    unit, expected, counter_range = CASES[key]
    profile = load_profile(key)
    server = serve({profile.default_unit_id: unit})
    settings = ModbusDeviceSettings(
        id=key,
        host="127.0.0.1",
        port=server.port,
        unit_id=profile.default_unit_id,
        profile=key,
        timeout_s=3.0,
    )
    reading = read_device(settings)
    assert {k: str(v) for k, v in reading.fields.items()} == expected
    assert reading.counter_range_wh == (None if counter_range is None else Decimal(counter_range))


def test_huawei_no_value_patterns_are_left_out(serve: Serve) -> None:
    unit = CASES["huawei_sun2000"][0]
    night = FakeUnit(holding=dict(unit.holding))
    night.set_words(32080, [0x8000, 0x0000])  # int32nan
    night.set_words(32106, [0xFFFF, 0xFFFF])  # uint32nan, not 42949672.95 kWh
    server = serve({1: night})
    settings = ModbusDeviceSettings(
        id="sun2000", host="127.0.0.1", port=server.port, profile="huawei_sun2000", timeout_s=3
    )
    fields = read_device(settings).fields
    assert "energy_wh" not in fields
    assert "power_w" not in fields
    night.set_words(32080, [0x7FFF, 0xFFFF])  # the other int32nan
    assert "power_w" not in read_device(settings).fields


@pytest.mark.parametrize("key", ["solaredge_inverter", "fronius_symo_float"])
def test_fixed_sunspec_profiles_agree_with_discovery(serve: Serve, key: str) -> None:
    unit, expected, _range = CASES[key]
    server = serve({1: unit})
    settings = ModbusDeviceSettings(id=key, host="127.0.0.1", port=server.port, profile="sunspec")
    discovered = {k: str(v) for k, v in read_device(settings).fields.items()}
    common = discovered.keys() & expected.keys()
    assert {"energy_wh", "power_w", "frequency_hz"} <= common
    assert {k: discovered[k] for k in common} == {k: expected[k] for k in common}


def test_custom_registers_every_type_and_word_order(serve: Serve) -> None:
    specs = [
        RegisterSpec("a_u16", 0, "holding", "u16", "big", Decimal("0.1"), "V"),
        RegisterSpec("b_i16", 1, "holding", "i16", "big", Decimal(1), "W"),
        RegisterSpec("energy_wh", 2, "input", "u32", "little", Decimal("0.01"), "kWh"),
        RegisterSpec("d_i32", 4, "input", "i32", "big", Decimal(1), "W"),
        RegisterSpec("e_u64", 10, "holding", "u64", "big", Decimal(1), "Wh"),
        RegisterSpec("f_i64", 14, "holding", "i64", "little", Decimal(1), "Wh"),
        RegisterSpec("power_w", 20, "input", "f32", "little", Decimal(1), "kW"),
        RegisterSpec("h_f64", 30, "holding", "f64", "big", Decimal("0.5"), "MWh"),
    ]
    holding = {
        0: 2301,
        1: 0xFFFE,
        **words_at(10, [0, 0, 0x0001, 0x0000]),
        **words_at(14, encode_number(-5, "i64", "little")),
        **words_at(30, encode_number(0.25, "f64", "big")),
    }
    inputs = {
        **words_at(2, [0x5678, 0x1234]),
        **words_at(4, [0xFFFF, 0xFF00]),
        **words_at(20, f32(1.5)[::-1]),
    }
    server = serve({1: FakeUnit(holding=holding, input=inputs)})
    settings = ModbusDeviceSettings(
        id="c", host="127.0.0.1", port=server.port, profile="custom", registers=tuple(specs)
    )
    reading = read_device(settings)
    assert dict(reading.fields) == {
        "a_u16": Decimal("230.100"),
        "b_i16": Decimal("-2.000"),
        "energy_wh": Decimal("3054198960.000"),  # 0x12345678 × 0.01 kWh
        "d_i32": Decimal("-256.000"),
        "e_u64": Decimal("65536.000"),
        "f_i64": Decimal("-5.000"),
        "power_w": Decimal("1500.000"),
        "h_f64": Decimal("125000.000"),
    }
    assert reading.counter_range_wh == Decimal(2**32) * Decimal("0.01") * 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'name="x"\nsource="s"\n[[registers]]\nfield="energy_wh"\naddress=1\nscale=0.1',
            "decimal string",
        ),
        (
            'name="x"\nsource="s"\n[[registers]]\nfield="e"\naddress=1\ntype="u24"',
            "type: must be one of",
        ),
        ('name="x"\nsource="s"\n[[registers]]\nfield="e"\naddress=70000', "address: must be"),
        (
            'name="x"\nsource="s"\n[[registers]]\nfield="e"\naddress=1\nunit="furlong"',
            "unknown unit",
        ),
        ('name="x"\n[[registers]]\nfield="e"\naddress=1', "source: required"),
        ('name="x"\nsource="s"\ncolour="red"\n[[registers]]\nfield="e"\naddress=1', "unknown key"),
    ],
)
def test_invalid_profiles_are_refused_with_the_key_named(text: str, message: str) -> None:
    with pytest.raises(PermanentError, match=message):
        parse_profile("bad", text)


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(PermanentError, match="eastron_sdm630"):
        load_profile("acme_9000")
