"""`scan`: discovery of every model and its decoded points, in text and JSON-able form."""

from __future__ import annotations

import json

import pytest

from heliod.adapters.errors import PermanentError, RetryableError
from heliod.adapters.modbus import scan
from tests.adapters.modbus.fakes import FakeUnit, Serve
from tests.adapters.modbus.sunspec_image import COMMON, sunspec_image
from tests.support import free_port

INVERTER = {"W": 4200, "W_SF": 0, "WH": 123456, "WH_SF": 1, "PhVphA": 2301, "V_SF": -1, "St": 4}
METER = {"W": -300, "W_SF": 0, "TotWhExp": 999, "TotWhImp": 5, "TotWh_SF": 0}


def test_scan_lists_models_and_values(serve: Serve) -> None:
    image = sunspec_image([COMMON, (103, INVERTER), (203, METER)], end_marker=False)
    end = max(image) + 1
    vendor = [64001, 4, 1, 2, 3, 4, 0xFFFF, 0]  # a vendor model heliod does not decode
    image.update({end + i: w for i, w in enumerate(vendor)})
    server = serve({1: FakeUnit(holding=image)})
    result = scan("127.0.0.1", server.port, 1)
    assert [(m.id, m.address, m.length) for m in result.models] == [
        (1, 40002, 66),
        (103, 40070, 50),
        (203, 40122, 105),
        (64001, 40229, 4),
    ]
    assert result.energy_model == 103
    common, inverter, meter, vendor_model = result.models
    assert {p.name: p.value for p in common.points}["Mn"] == "heliod"
    values = {p.name: (f"{p.value:f}", p.unit) for p in inverter.points}
    assert values["W"] == ("4200", "W")
    assert values["WH"] == ("1234560", "Wh")
    assert values["PhVphA"] == ("230.1", "V")
    assert "W_SF" not in values  # scale factors are applied, not shown
    assert "A" not in values  # not implemented points are left out
    assert str(inverter.fields["energy_wh"]) == "1234560.000"
    assert str(meter.fields["power_w"]) == "-300.000"
    assert vendor_model.name == "unknown"
    assert vendor_model.points == ()

    data = json.loads(json.dumps(result.to_dict()))
    assert data["base_address"] == 40000
    assert data["models"][1]["fields"]["energy_wh"] == "1234560.000"
    text = result.to_text()
    assert 'model 103 inverter three phase @ 40070, length 50  (read by profile "sunspec")' in text
    assert "model 64001 unknown @ 40229, length 4" in text
    assert "PhVphA           230.1 V" in text


def test_scan_of_a_device_without_sunspec(serve: Serve) -> None:
    server = serve({1: FakeUnit(holding={0: 1, 1: 2})})
    with pytest.raises(PermanentError, match="no SunSpec marker"):
        scan("127.0.0.1", server.port)


def test_scan_of_nothing_is_retryable() -> None:
    with pytest.raises(RetryableError, match="cannot connect"):
        scan("127.0.0.1", free_port(), timeout_s=0.5)
