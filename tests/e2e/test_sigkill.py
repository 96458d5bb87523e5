"""The full daemon survives SIGKILL at random moments: nothing lost, nothing doubled.

Between kills the inverter keeps producing and the meter keeps publishing (the broker
queues its messages in heliod's persistent session). Then both fall silent, and after a
last clean run has caught up, the ledger verifies, the accounted energy is exactly the counters' rise, every MWh is
minted once, every published meter value is stored, every mint and milestone event reached
the platform with the bytes committed, and every stored reading reached VictoriaMetrics.
"""

from __future__ import annotations

import random
import time
from functools import partial
from pathlib import Path

from sqlalchemy import func, select

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from tests.adapters.mqtt.broker import Broker
from tests.e2e.harness import Daemon, Meter, Platform, heliod, steady_inverter, write_config
from tests.support import free_port
from tests.victoria import Victoria

MWH_IN_MWH_UNITS = 10**9
KILLS = 5


def _first_energy(conn: object, device: str) -> int:
    r = t.readings.c
    return int(
        conn.execute(  # type: ignore[attr-defined]
            select(r.energy_mwh)
            .where(r.device == device, r.energy_mwh.is_not(None))
            .order_by(r.id)
            .limit(1)
        ).scalar()
    )


def _says(daemon: Daemon, text: str) -> bool:
    return text in daemon.log()


def _mints(db: Path) -> int:
    stored = Store.open(f"sqlite:///{db}", migrate=False)
    try:
        with stored.read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.mints)).scalar() or 0)
    finally:
        stored.close()


def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    tmp_path: Path, services: tuple[Broker, Victoria, Platform]
) -> None:
    broker, vm, platform = services
    rng = random.Random(1201)
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
        poll="300ms",
    )
    platform.fail_next = 3  # a few retries on the way
    meter: Meter | None = None
    kills = 0
    try:
        for _ in range(KILLS):
            daemon = Daemon(config, api_port)
            if meter is None:
                # The broker queues messages for heliod only once its session exists.
                daemon.wait_for("the MQTT session", partial(_says, daemon, "mqtt: connected"))
                meter = Meter(broker)
            # Sometimes before it is up, mostly while it polls, accounts, pushes and exports.
            time.sleep(rng.uniform(0.5, 5.0))
            if daemon.proc.poll() is None:
                daemon.kill()
                kills += 1
            time.sleep(rng.uniform(0.0, 1.0))
        # A few MWh whatever the machine's load (a loaded machine may spend most of a
        # short life starting up): one more life that reaches its third mint, then a kill.
        daemon = Daemon(config, api_port)
        daemon.wait_for(
            "three mints", lambda: _mints(site / "state" / "heliod.db") >= 3, timeout=120
        )
        daemon.kill()
        kills += 1
        # Quiet sources for the last run, so "caught up" has a fixed target.
        assert meter is not None
        meter.stop()
        inverter.stop()
        daemon = Daemon(config, api_port)
        stored = Store.open(f"sqlite:///{site / 'state' / 'heliod.db'}", migrate=False)

        def caught_up() -> bool:
            code, health = daemon.get("/healthz", token=False)
            if code != 200 or health["sync"]["pending"] or health["export"]["pending"]:
                return False
            with stored.read() as conn:
                r = t.readings.c
                meter_values = {
                    int(v)
                    for (v,) in conn.execute(select(r.energy_mwh).where(r.device == "meter1"))
                }
                position = repo.load_state(conn).position
                last = conn.execute(select(func.max(r.id))).scalar() or 0
            # The accountant keeps each device's last reading pending: position trails by ≤ 2.
            return {v * 1000 for v in meter.sent} <= meter_values and last - position <= 2

        daemon.wait_for("the last run to catch up", caught_up, timeout=40)
        code, took = daemon.terminate()
        assert code == 0, daemon.log()[-3000:]
        assert took < 10
    finally:
        if meter is not None:
            meter.stop()
        inverter.stop()
    assert kills >= 3, "the kills must land while the daemon runs"

    verify = heliod(config, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr

    try:
        with stored.read() as conn:
            state = repo.load_state(conn)
            anomalies = conn.execute(select(func.count()).select_from(t.anomalies)).scalar()
            mints = conn.execute(
                select(t.mints.c.mwh_index, t.mints.c.event).where(t.mints.c.plant == "brassemonte")
            ).all()
            goal_events = conn.execute(select(t.events.c.event_id, t.events.c.body)).all()
            readings_inv1 = conn.execute(
                select(func.count()).where(t.readings.c.device == "inv1")
            ).scalar()
            first = {d: _first_energy(conn, d) for d in ("inv1", "meter1")}
    finally:
        stored.close()
    assert anomalies == 0
    for plant, device in (("brassemonte", "inv1"), ("roof", "meter1")):
        final = state.devices[device].final
        assert final is not None
        # E is exactly the counter's rise from the first reading to the last confirmed one.
        assert state.plants[plant].e_mwh == final.value_mwh - first[device]
    e_mwh = state.plants["brassemonte"].e_mwh
    assert sorted(k for k, _ in mints) == list(range(1, e_mwh // MWH_IN_MWH_UNITS + 1))
    assert len(mints) >= 3

    received = platform.received()
    by_key: dict[str, set[bytes]] = {}
    for event in received:
        by_key.setdefault(event["key"], set()).add(event["body"])
    events = {f"brassemonte:{k}": e.encode() for k, e in mints}
    # The default milestones (1, 10, … MWh): each reached one stored once and pushed.
    reached = {f"brassemonte:milestone:{m}" for m in (1, 10, 100) if m <= len(mints)}
    assert {key for key, _ in goal_events} == reached
    events.update({key: body.encode() for key, body in goal_events})
    assert set(by_key) == set(events)
    for key, bodies in by_key.items():
        assert bodies == {events[key]}, f"{key} sent with other bytes than committed"

    vm.flush()
    series = vm.export('{plant="brassemonte",device="inv1"}')
    samples = series[("reading_energy_wh", (("device", "inv1"), ("plant", "brassemonte")))]
    assert len(samples) == readings_inv1
