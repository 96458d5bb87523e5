"""Payload decoding without a broker: exact numbers, units, timestamps, every kind of garbage."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from heliod.adapters.errors import PermanentError
from heliod.adapters.mqtt import (
    MAX_PAYLOAD_BYTES,
    BadPayloads,
    DeviceSettings,
    FieldSpec,
    PayloadDecoder,
    PayloadError,
)
from heliod.adapters.mqtt.payload import parse_json

ARRIVAL = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def decoder(
    path: str = "E", unit: str = "kWh", ts: str | None = None, tz: str = "Europe/Paris"
) -> PayloadDecoder:
    return PayloadDecoder(
        DeviceSettings(
            id="d",
            topic="t",
            fields={"energy_wh": FieldSpec(path, unit)},
            timestamp_path=ts,
            timezone=tz,
        )
    )


@pytest.mark.parametrize(
    ("payload", "unit", "expected"),
    [
        (b'{"E": 6.294}', "kWh", "6294.000"),
        (b'{"E": 0.1}', "kWh", "100.000"),  # 0.1 as a binary float would not be exact
        (b'{"E": 1234.5678}', "Wh", "1234.568"),  # one rounding, half to even
        (b'{"E": 1234.5675}', "Wh", "1234.568"),
        (b'{"E": 1234.5665}', "Wh", "1234.566"),
        (b'{"E": 1.0000005}', "MWh", "1000000.500"),
        (b'{"E": 12345678901234567890.123}', "Wh", "absurd"),
        (b'{"E": 1000000000.000001}', "MWh", "absurd"),  # 1 Wh above 10^15 Wh
        (b'{"E": 1000000000}', "MWh", "1000000000000000.000"),  # 10^15 Wh is allowed
        (b'{"E": 2E3}', "Wh", "2000.000"),
        (b'{"E": 0}', "Wh", "0.000"),
    ],
)
def test_energy_is_exact(payload: bytes, unit: str, expected: str) -> None:
    dec = decoder(unit=unit)
    if expected == "absurd":
        with pytest.raises(PayloadError) as err:
            dec.decode(payload, ARRIVAL)
        assert err.value.reason == "absurd"
        return
    reading = dec.decode(payload, ARRIVAL)
    assert str(reading.fields["energy_wh"]) == expected
    assert reading.ts == ARRIVAL


def test_power_units_and_negative_power_are_kept() -> None:
    dec = PayloadDecoder(
        DeviceSettings(
            id="inv",
            topic="t",
            fields={"power_w": FieldSpec("P", "kW"), "voltage": FieldSpec("U", "V")},
        )
    )
    r = dec.decode(b'{"P": -0.0025, "U": 231.4}', ARRIVAL)
    assert r.fields == {"power_w": Decimal("-2.500"), "voltage": Decimal("231.400")}


def test_whole_payload_is_a_number() -> None:
    r = decoder(path="", unit="kWh").decode(b"1234.567\n", ARRIVAL)
    assert str(r.fields["energy_wh"]) == "1234567.000"


def test_paths_go_through_objects_and_arrays() -> None:
    dec = decoder(path="params.emdata:0.totals.1", unit="Wh")
    r = dec.decode(b'{"params": {"emdata:0": {"totals": [1, 42.5]}}}', ARRIVAL)
    assert r.fields["energy_wh"] == Decimal("42.5")


@pytest.mark.parametrize(
    ("ts_value", "expected"),
    [
        ('"2018-02-15T17:37:10"', datetime(2018, 2, 15, 16, 37, 10, tzinfo=UTC)),  # Paris, winter
        ('"2018-07-15T17:37:10"', datetime(2018, 7, 15, 15, 37, 10, tzinfo=UTC)),  # Paris, summer
        ('"2018-02-15T17:37:10Z"', datetime(2018, 2, 15, 17, 37, 10, tzinfo=UTC)),
        ('"2018-02-15T17:37:10+05:30"', datetime(2018, 2, 15, 12, 7, 10, tzinfo=UTC)),
        ("1631266595.43", datetime(2021, 9, 10, 9, 36, 35, 430000, tzinfo=UTC)),
        ("1631266595", datetime(2021, 9, 10, 9, 36, 35, tzinfo=UTC)),
        ('"1631266595"', datetime(2021, 9, 10, 9, 36, 35, tzinfo=UTC)),
    ],
)
def test_timestamps(ts_value: str, expected: datetime) -> None:
    dec = decoder(ts="Time")
    r = dec.decode(b'{"E": 1, "Time": ' + ts_value.encode() + b"}", ARRIVAL)
    assert r.ts == expected
    assert r.ts.utcoffset() is not None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not_json"),
        (b"", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b'{"E": 1', "not_json"),
        (b"[" * 60_000, "not_json"),
        (b'{"E": NaN}', "non_finite_literal"),
        (b'{"E": Infinity}', "non_finite_literal"),
        (b'{"E": -Infinity}', "non_finite_literal"),
        (b'{"E": 1, "E": 2}', "duplicate_key"),
        (b'{"x": {"a": 1, "a": 1}, "E": 2}', "duplicate_key"),
        (b'{"e": 1}', "missing_key"),
        (b"[1, 2]", "missing_key"),
        (b'{"E": "6.294"}', "not_a_number"),
        (b'{"E": null}', "not_a_number"),
        (b'{"E": true}', "not_a_number"),
        (b'{"E": {"v": 1}}', "not_a_number"),
        (b'{"E": -0.001}', "negative"),
        (b'{"E": 1e999999999}', "absurd"),
        (b'{"E": 2e12}', "absurd"),  # kWh: above 10^15 Wh
        (b'{"E": 1, "Time": "yesterday"}', "bad_timestamp"),
        (b'{"E": 1, "Time": 1700000000000}', "bad_timestamp"),  # milliseconds
        (b'{"E": 1, "Time": null}', "bad_timestamp"),
        (b'{"E": 1}', "missing_key"),  # no Time
    ],
)
def test_bad_payloads_name_their_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        decoder(ts="Time").decode(payload, ARRIVAL)
    assert err.value.reason == reason


def test_megabyte_payload_is_refused_before_parsing() -> None:
    big = b'{"E": 1, "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    with pytest.raises(PayloadError) as err:
        parse_json(big)
    assert err.value.reason == "too_large"
    assert parse_json(b" " * (MAX_PAYLOAD_BYTES - 1) + b"1") == Decimal(1)


def test_whole_payload_nan_text_is_refused() -> None:
    for text in (b"NaN", b"nan", b"Infinity", b'"12"'):
        with pytest.raises(PayloadError):
            decoder(path="").decode(text, ARRIVAL)


def test_unknown_unit_or_zone_is_a_configuration_error() -> None:
    with pytest.raises(PermanentError, match="furlong"):
        decoder(unit="furlong")
    with pytest.raises(PermanentError, match="Mars/Olympus"):
        decoder(tz="Mars/Olympus")


def test_bad_payload_log_is_rate_limited_per_device(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    bad = BadPayloads(interval_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="heliod.adapters.mqtt"):
        for _ in range(1000):
            bad.record("m1", "not_json", "Expecting value", "tele/m1/SENSOR")
            now[0] += 0.1  # ten garbage messages a second for 100 s
        bad.record("m2", "missing_key", "no 'E'", "tele/m2/SENSOR")
        bad.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert bad.by_device == {"m1": 1000, "m2": 1}
    assert bad.by_reason == {("m1", "not_json"): 1000, ("m2", "missing_key"): 1}
    assert len(lines) == 4, lines  # m1 at 0 s and at 60 s, m2 once, then one summary
    assert "599 more suppressed" in lines[1]
    assert lines[3] == "399 more bad payloads from device m1 were not logged"
