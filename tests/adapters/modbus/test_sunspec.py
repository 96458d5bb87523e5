"""SunSpec discovery and decoding against pymodbus servers built from the SunSpec JSON models."""

from __future__ import annotations

import math
import time
from decimal import Decimal

import pytest

from heliod.adapters.errors import PermanentError, RetryableError
from heliod.adapters.modbus import ConnectionPool, ModbusDevice, ModbusDeviceSettings, read_device
from heliod.adapters.modbus.sunspec import MAX_MODELS
from heliod.adapters.modbus.sunspec_models import MODEL_LAYOUTS, SUNSPEC_TYPES
from tests.adapters.modbus.fakes import FakeUnit, Serve
from tests.adapters.modbus.sunspec_image import COMMON, model_points, sunspec_image

JSON_TYPES = {
    "uint16": "u16", "int16": "i16", "acc16": "a16", "enum16": "e16", "bitfield16": "b16",
    "uint32": "u32", "int32": "i32", "acc32": "a32", "enum32": "e32", "bitfield32": "b32",
    "uint64": "u64", "int64": "i64", "acc64": "a64", "float32": "f32", "sunssf": "sf",
    "pad": "pad", "string": "string",
}  # fmt: skip

INVERTER_103 = {
    "A": 3615, "A_SF": -2, "W": 24987, "W_SF": -1, "Hz": 5002, "Hz_SF": -2,
    "VA": 2510, "VA_SF": 1, "VAr": -120, "VAr_SF": 0, "WH": 987654321, "WH_SF": 0,
    "DCW": 2571, "DCW_SF": 1, "TmpCab": 412, "Tmp_SF": -1, "St": 4,
}  # fmt: skip


def settings(port: int, **kwargs: object) -> ModbusDeviceSettings:
    options: dict[str, object] = {"timeout_s": 1.0, **kwargs}
    return ModbusDeviceSettings(id="dev", host="127.0.0.1", port=port, **options)  # type: ignore[arg-type,unused-ignore]


@pytest.mark.parametrize("model_id", sorted(MODEL_LAYOUTS))
def test_tables_match_the_sunspec_model_definitions(model_id: int) -> None:
    expected = model_points(model_id)[2:]
    layout = MODEL_LAYOUTS[model_id]
    assert len(layout.points) == len(expected)
    for ours, theirs in zip(layout.points, expected, strict=True):
        assert ours.offset == theirs["offset"], ours.name
        assert ours.width == theirs["size"], ours.name
        assert ours.type == JSON_TYPES[theirs["type"]], ours.name
        assert ours.sf == theirs.get("sf", ""), ours.name
        if ours.type in SUNSPEC_TYPES:
            assert SUNSPEC_TYPES[ours.type][1] == theirs["size"]
    for _field, name in layout.fields:  # the points feeding readings exist under that name
        assert name in {p["name"] for p in expected}


def test_three_phase_inverter_fields_are_scaled_exactly(serve: Serve) -> None:
    server = serve({1: FakeUnit(holding=sunspec_image([COMMON, (103, INVERTER_103)]))})
    reading = read_device(settings(server.port))
    assert reading.device == "dev"
    assert reading.ts.utcoffset() is not None
    assert dict(reading.fields) == {
        "energy_wh": Decimal("987654321.000"),
        "power_w": Decimal("2498.700"),
        "apparent_power_va": Decimal("25100.000"),
        "reactive_power_var": Decimal("-120.000"),
        "frequency_hz": Decimal("50.020"),
        "dc_power_w": Decimal("25710.000"),
        "temperature_c": Decimal("41.200"),
    }
    assert reading.counter_range_wh == Decimal(2**32)


def test_energy_scale_factor_sets_the_counter_range(serve: Serve) -> None:
    values = {**INVERTER_103, "WH": 123456, "WH_SF": 2}
    server = serve({1: FakeUnit(holding=sunspec_image([COMMON, (101, values)]))})
    reading = read_device(settings(server.port))
    assert reading.energy_wh == Decimal("12345600.000")
    assert reading.counter_range_wh == Decimal(2**32) * 100


def test_meter_gives_energy_from_exported_total(serve: Serve) -> None:
    meter = {
        "W": -1520, "W_SF": 0, "Hz": 4998, "Hz_SF": -2, "TotWhExp": 5000123,
        "TotWhImp": 42, "TotWh_SF": 1, "VA": 1600, "VA_SF": 0, "VAR": 300, "VAR_SF": 0,
    }  # fmt: skip
    server = serve({2: FakeUnit(holding=sunspec_image([COMMON, (203, meter)]))})
    reading = read_device(settings(server.port, unit_id=2))
    assert reading.energy_wh == Decimal("50001230.000")
    assert reading.fields["energy_import_wh"] == Decimal("420.000")
    assert reading.power_w == Decimal("-1520.000")
    assert reading.fields["frequency_hz"] == Decimal("49.980")
    assert reading.counter_range_wh == Decimal(2**32) * 10


def test_float_inverter_uses_the_exact_binary_value(serve: Serve) -> None:
    values = {"W": 0.1, "WH": 16777216.0 + 2.0, "Hz": 50.0, "TmpCab": math.nan}
    server = serve({1: FakeUnit(holding=sunspec_image([COMMON, (113, values)]))})
    reading = read_device(settings(server.port))
    # float32(0.1) is exactly 0.100000001490116119384765625 W: one rounding gives 0.100
    assert reading.power_w == Decimal("0.100")
    assert reading.energy_wh == Decimal("16777218.000")
    assert reading.fields["frequency_hz"] == Decimal("50.000")
    assert "temperature_c" not in reading.fields  # NaN is absent, never 0
    assert reading.counter_range_wh is None  # a float counter has no rollover range


def test_float_meter_and_der_model(serve: Serve) -> None:
    float_meter = {"W": 812.5, "TotWhExp": 1234.5, "TotWhImp": math.inf}
    der = {
        "W": 4100,
        "W_SF": 0,
        "TotWhInj": 2**40 + 7,
        "TotWhAbs": 5,
        "TotWh_SF": 0,
        "Hz": 50000,
        "Hz_SF": -3,
    }
    server = serve(
        {
            1: FakeUnit(holding=sunspec_image([COMMON, (213, float_meter)])),
            3: FakeUnit(holding=sunspec_image([COMMON, (701, der)], base=0)),
        }
    )
    meter = read_device(settings(server.port, unit_id=1))
    assert meter.energy_wh == Decimal("1234.500")
    assert meter.power_w == Decimal("812.500")
    assert "energy_import_wh" not in meter.fields  # infinity is no value either
    der_reading = read_device(settings(server.port, unit_id=3))
    assert der_reading.energy_wh == Decimal(2**40 + 7).quantize(Decimal("0.001"))
    assert der_reading.fields["energy_import_wh"] == Decimal("5.000")
    assert der_reading.fields["frequency_hz"] == Decimal("50.000")
    assert der_reading.counter_range_wh == Decimal(2**64)


def test_a_64_bit_counter_with_the_largest_scale_factor_is_exact(serve: Serve) -> None:
    der = {"W": 4100, "W_SF": 0, "TotWhInj": 2**63 - 1, "TotWhAbs": 5, "TotWh_SF": 10}
    server = serve({1: FakeUnit(holding=sunspec_image([COMMON, (701, der)]))})
    reading = read_device(settings(server.port))
    energy = reading.energy_wh
    assert energy == (2**63 - 1) * 10**10
    assert energy is not None and energy.as_tuple().exponent == -3  # 32 digits, not 28
    assert reading.counter_range_wh == Decimal(2**64) * 10**10


@pytest.mark.parametrize(
    ("changes", "absent"),
    [
        ({"W": 0x8000}, {"power_w"}),
        ({"W_SF": 0x8000}, {"power_w"}),
        ({"WH": 0}, {"energy_wh"}),  # acc32 0 = not accumulated
        ({"WH_SF": 0x8000}, {"energy_wh"}),
        ({"WH_SF": 11}, {"energy_wh"}),  # a scale factor outside -10..10 is not trusted
        ({"Hz": 0xFFFF}, {"frequency_hz"}),
    ],
)
def test_not_implemented_values_are_absent(
    serve: Serve, changes: dict[str, int], absent: set[str]
) -> None:
    server = serve(
        {1: FakeUnit(holding=sunspec_image([COMMON, (103, {**INVERTER_103, **changes})]))}
    )
    reading = read_device(settings(server.port))
    assert absent.isdisjoint(reading.fields)
    assert len(reading.fields) == 7 - len(absent)
    if "energy_wh" in absent:
        assert reading.counter_range_wh is None


@pytest.mark.parametrize("base", [0, 50000])
def test_discovery_at_other_base_addresses(serve: Serve, base: int) -> None:
    server = serve({1: FakeUnit(holding=sunspec_image([COMMON, (103, INVERTER_103)], base=base))})
    assert read_device(settings(server.port)).energy_wh == Decimal("987654321.000")


def test_discovery_goes_on_after_a_timeout_at_40000(serve: Serve) -> None:
    image = sunspec_image([COMMON, (103, INVERTER_103)], base=0)
    unit = FakeUnit(holding={**image, 40000: 0, 40001: 0})
    unit.silent_at = {40000}  # no answer at all there, not even "illegal address"
    server = serve({1: unit})
    reading = read_device(settings(server.port, timeout_s=0.3, retries=0))
    assert reading.energy_wh == Decimal("987654321.000")


def test_inverter_preferred_over_meter_in_one_chain(serve: Serve) -> None:
    image = sunspec_image([COMMON, (203, {"TotWhExp": 5, "TotWh_SF": 0}), (103, INVERTER_103)])
    server = serve({1: FakeUnit(holding=image)})
    assert read_device(settings(server.port)).energy_wh == Decimal("987654321.000")


def test_chain_without_end_marker_is_an_error_not_a_hang(serve: Serve) -> None:
    # "SunS", then zero-length models forever: the walk must give up.
    image = {40000: 0x5375, 40001: 0x6E53}
    image.update({40002 + i: (7 if i % 2 == 0 else 0) for i in range(2 * MAX_MODELS + 10)})
    server = serve({1: FakeUnit(holding=image)})
    started = time.monotonic()
    with pytest.raises(PermanentError, match="no end marker"):
        read_device(settings(server.port))
    assert time.monotonic() - started < 5


def test_chain_ending_in_an_unreadable_address_still_works(serve: Serve) -> None:
    image = sunspec_image([COMMON, (103, INVERTER_103)], end_marker=False)
    server = serve({1: FakeUnit(holding=image)})
    assert read_device(settings(server.port)).power_w == Decimal("2498.700")


def test_no_sunspec_marker_is_permanent(serve: Serve) -> None:
    server = serve({1: FakeUnit(holding={40000: 1, 40001: 2, 0: 0, 1: 0})})
    with pytest.raises(PermanentError, match="no SunSpec marker"):
        read_device(settings(server.port))


def test_no_energy_model_is_permanent(serve: Serve) -> None:
    server = serve({1: FakeUnit(holding=sunspec_image([COMMON]))})
    with pytest.raises(PermanentError, match="found models: 1"):
        read_device(settings(server.port))


def test_changed_map_is_rediscovered(serve: Serve) -> None:
    unit = FakeUnit(holding=sunspec_image([COMMON, (103, INVERTER_103), (203, {})]))
    server = serve({1: unit})
    pool = ConnectionPool()
    device = ModbusDevice(settings(server.port), pool)
    assert device.poll().energy_wh == Decimal("987654321.000")
    # firmware update: the same addresses now hold a meter where the inverter was
    moved = sunspec_image([COMMON, (203, {"TotWhExp": 77, "TotWh_SF": 0}), (103, INVERTER_103)])
    for address, word in moved.items():
        if address in unit.holding:
            unit.holding[address] = word
    with pytest.raises(RetryableError, match="map changed"):
        device.poll()
    reading = device.poll()
    assert reading.energy_wh == Decimal("987654321.000")
    pool.close()
