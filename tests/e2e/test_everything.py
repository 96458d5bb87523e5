"""Everything real at once: `heliod run` between a SunSpec inverter, Mosquitto with a meter
publishing, VictoriaMetrics, and a platform of the test's own; then SIGTERM. The plant has
milestones, challenges and impact figures: their events reach the platform and MQTT once
each, every one after the mint that caused it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from tests.adapters.mqtt.broker import Broker, Collector
from tests.e2e.harness import Daemon, Meter, Platform, heliod, steady_inverter, write_config
from tests.support import free_port
from tests.victoria import Victoria

GOALS = """
[plants.impact]
co2_g_per_kwh = "56"
source = "ADEME Base Carbone, mix moyen"

[[plants.milestones]]
mwh = 1

[[plants.milestones]]
mwh = 2

[[plants.milestones]]
mwh = 3

[[plants.challenges]]
id = "two"
title = "2 MWh: a bench"
goal_mwh = 2
deadline = "2099-01-01T00:00:00"
sponsor = "Mairie"

[[plants.challenges]]
id = "gone"
title = "A GWh by 2020"
goal_mwh = 1000
deadline = "2020-01-01T00:00:00"
sponsor = "Région"
"""


def _outbox(db: Path) -> tuple[dict[str, bytes], list[str]]:
    """Every stored push body by event id, and brassemonte's events in push order: each
    mint, then the goal events committed after it."""
    store = Store.open(f"sqlite:///{db}", migrate=False)
    try:
        with store.read() as conn:
            m, e = t.mints.c, t.events.c
            mints = conn.execute(select(m.plant, m.mwh_index, m.event)).all()
            goals = conn.execute(select(e.plant, e.event_id, e.after_mint, e.id, e.body)).all()
    finally:
        store.close()
    bodies = {f"{p}:{k}": body.encode() for p, k, body in mints}
    bodies.update({key: body.encode() for _, key, _, _, body in goals})
    order = [((k, 0, 0), f"brassemonte:{k}") for p, k, _ in mints if p == "brassemonte"]
    order += [((a, 1, row), key) for p, key, a, row, _ in goals if p == "brassemonte"]
    return bodies, [key for _, key in sorted(order)]


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
        goals=GOALS,
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
        daemon.wait_for(
            "mint 3 and its milestone pushed",
            lambda: "brassemonte:milestone:3" in {e["key"] for e in platform.received()},
        )
        status, goals = daemon.get("/api/v1/plants/brassemonte/milestones")
        assert status == 200
        assert [m["reached_at"] is not None for m in goals["milestones"]] == [True, True, True]
        assert {c["id"]: c["status"] for c in goals["challenges"]} == {
            "two": "reached",
            "gone": "missed",
        }
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

    # Every event, mint or goal, once and in push order: each goal event after its mint.
    bodies, order = _outbox(site / "state" / "heliod.db")
    assert {"brassemonte:milestone:1", "brassemonte:challenge:two"} <= set(order)
    assert "brassemonte:challenge:gone" in order  # missed by the first run after 2020
    published = [
        json.loads(payload)["id"]
        for topic, payload, _ in watcher.messages
        if topic in ("heliod/brassemonte/mint", "heliod/brassemonte/event")
    ]
    assert published == order[: len(published)] and len(published) >= 7, published
    state = json.loads([p for tp, p, _ in watcher.messages if tp == "heliod/brassemonte/state"][-1])
    assert state["co2_source"] == "ADEME Base Carbone, mix moyen"
    assert Decimal(str(state["co2_avoided_kg"])) > 0

    # The platform: every event signed, acknowledged once, in push order, byte for byte.
    received = platform.received()
    assert platform.bad_signatures == 0
    keys = [e["key"] for e in received]
    assert keys == order[: len(keys)], keys
    for event in received:
        assert event["body"] == bodies[event["key"]]
    assert len(mints) >= 3

    # VictoriaMetrics has the readings and the mints.
    vm.flush()
    series = vm.export('{plant="brassemonte"}')
    energy = series[("reading_energy_wh", (("device", "inv1"), ("plant", "brassemonte")))]
    assert len(energy) > 10
    assert ("mint_units", (("plant", "brassemonte"),)) in series

    verify = heliod(config, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
