"""The dashboard's power curve sums every device of the plant that reports power (docs/mqtt.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from heliod.adapters.store import Store
from heliod.daemon.boot.settings import http_settings
from heliod.daemon.config import load_config
from heliod.daemon.read.dashboard import plant_data
from heliod.daemon.read.plants import Minted
from heliod.rewards.readings import Reading
from heliod.rewards.times import to_us
from tests.support import ROOT


def test_power_curve_includes_a_power_only_device(tmp_path: Path) -> None:
    # The shipped OpenDTU example: energy on "hm800", power on "hm800-power".
    config = load_config(ROOT / "config" / "mqtt-opendtu.toml", env={})
    plant = http_settings(config).plants[0]
    store = Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")
    noon = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
    try:
        store.ingest(
            [
                Reading("hm800", noon, {"energy_wh": Decimal("6294000.000")}),
                Reading("hm800-power", noon, {"power_w": Decimal("612.400")}),
            ],
            to_us(noon),
        )
        with store.read() as conn:
            data = plant_data(conn, plant, Minted(), to_us(noon) + 60_000_000, None)
    finally:
        store.close()
    # Before the fix: no point (only the energy devices' power was read).
    assert [p["power_w"] for p in data["power_today"]["points"]] == ["612.400"]
