"""Services the end-to-end tests run for real: Mosquitto, VictoriaMetrics, a platform."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters.mqtt.broker import Broker
from tests.e2e.harness import Platform
from tests.support import require_binary
from tests.victoria import Victoria

BACKERS = [
    {"backer": "alice", "amount": "3", "valid_from": ""},
    {"backer": "bob", "amount": "2", "valid_from": "2016-12-01T00:00:00Z"},
    {"backer": "chloe", "amount": "1.5"},
]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[Broker, Victoria, Platform]]:
    broker = Broker(require_binary("mosquitto"), tmp_path / "mqtt")
    broker.start()
    (tmp_path / "vm").mkdir()
    vm = Victoria(tmp_path / "vm" / "data").start()
    platform = Platform(
        register={"brassemonte": BACKERS, "roof": [{"backer": "dan", "amount": "1"}]}
    )
    yield broker, vm, platform
    platform.close()
    vm.stop()
    broker.stop()
