"""Everything real at once: `heliod run` between a SunSpec inverter, Mosquitto with a meter
publishing, VictoriaMetrics, and a platform of the test's own; then SIGTERM."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from tests.adapters.mqtt.broker import Broker, Collector
from tests.e2e.harness import Daemon, Meter, Platform, heliod, steady_inverter, write_config
from tests.support import free_port
from tests.victoria import Victoria


def _stored_events(db: Path) -> dict[str, bytes]:
    store = Store.open(f"sqlite:///{db}", migrate=False)
    try:
        with store.read() as conn:
            rows = conn.execute(select(t.mints.c.plant, t.mints.c.mwh_index, t.mints.c.event))
            return {f"{p}:{k}": e.encode() for p, k, e in rows}
    finally:
        store.close()


def test_everything_real_at_once(
    tmp_path: Path, services: tuple[Broker, Victoria, Platform]
) -> None:
    broker, vm, platform = services
    inverter = steady_inverter()
    api_port = free_port()
    site = tmp_path / "site"
    config = write_config(
        site,
        api_port=api_port,
        modbus_port=inverter.port,
        mqtt_url=broker.url,
        influx_url=vm.url,
        platform_url=platform.url,
    )
    watcher = Collector(broker, "heliod/#", client_id="watcher")
    meter = Meter(broker)
    daemon = Daemon(config, api_port)
    try:
        health = daemon.wait_for(
            "both devices ok",
            lambda: (
                (h := daemon.get("/healthz", token=False)[1])
                and isinstance(h, dict)
                and h["status"] == "ok"
                and h
            ),
        )
        assert set(health["devices"]) == {"inv1", "meter1"}
        mints = daemon.wait_for(
            "three MWh minted",
            lambda: (
                (m := daemon.get("/api/v1/mints?plant=brassemonte")[1])
                and len(m["items"]) >= 3
                and m["items"]
            ),
        )
        daemon.wait_for("three events pushed", lambda: len(platform.received()) >= 3)
        status, credits = daemon.get("/api/v1/credits?limit=1000")
        assert status == 200
        assert {c["backer"] for c in credits["items"]} == {"alice", "bob", "chloe"}
        assert daemon.get("/api/v1/plants", token=False)[0] == 401
        status, plants = daemon.get("/api/v1/plants")
        roof = next(p for p in plants if p["id"] == "roof")
        assert Decimal(str(roof["energy_wh"])) > 0  # the meter's energy is accounted
        status, metrics = daemon.get("/metrics", token=False)
        assert 'heliod_readings_total{device="inv1"}' in metrics
        assert 'heliod_readings_total{device="meter1"}' in metrics
        assert 'heliod_mwh_minted_total{plant="brassemonte"}' in metrics
        daemon.wait_for(
            "the export caught up",
            lambda: (h := daemon.get("/healthz", token=False)[1]) and h["export"]["pending"] < 50,
        )
        meter.stop()
        code, took = daemon.terminate()
    finally:
        meter.stop()
        daemon.kill()
        inverter.stop()
    log = daemon.log()
    assert code == 0, log
    assert took < 10, f"SIGTERM took {took:.1f} s"
    assert "stopped cleanly" in log, log[-3000:]
    assert "Traceback" not in log, log
    assert "e2e-platform-secret" not in log

    # MQTT: availability ends offline (retained), state and mint events were published.
    watcher.wait_for(
        lambda msgs: (
            (t_ := [m for m in msgs if m[0] == "heliod/brassemonte/availability"])
            and t_[-1][1] == b"offline"
        )
    )
    topics = {m[0] for m in watcher.messages}
    assert {"heliod/brassemonte/state", "heliod/brassemonte/mint", "heliod/roof/state"} <= topics

    # The platform: every event signed, acknowledged in mint order, byte for byte as stored.
    stored = _stored_events(site / "state" / "heliod.db")
    received = platform.received()
    assert platform.bad_signatures == 0
    keys = [e["key"] for e in received]
    assert keys == [f"brassemonte:{k}" for k in range(1, len(keys) + 1)]
    for event in received:
        assert event["body"] == stored[event["key"]]
    assert len(mints) >= 3

    # VictoriaMetrics has the readings and the mints.
    vm.flush()
    series = vm.export('{plant="brassemonte"}')
    energy = series[("reading_energy_wh", (("device", "inv1"), ("plant", "brassemonte")))]
    assert len(energy) > 10
    assert ("mint_units", (("plant", "brassemonte"),)) in series

    verify = heliod(config, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
