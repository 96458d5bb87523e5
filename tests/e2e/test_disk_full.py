"""A full disk under the store, black-box: `heliod run` on a small tmpfs that fills up.

A SunSpec inverter (pymodbus) is polled and a meter publishes at QoS 1 through a real
Mosquitto while the disk under the store is full; then space is freed. Nothing
acknowledged is lost (every message the broker accepted is stored, no polled reading is
dropped), /healthz said `store: error` (and why) meanwhile, each MWh is logged "minted"
once, and `ledger verify` passes with the energy exact.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from tests.adapters.mqtt.broker import Broker
from tests.e2e.harness import Daemon, Meter, heliod, steady_inverter, write_config
from tests.support import fill, free_port, require_binary, tmpfs


def _says(daemon: Daemon, text: str) -> bool:
    return text in daemon.log()


def _health(daemon: Daemon) -> dict[str, Any]:
    code, body = daemon.get("/healthz", token=False)
    return body if code == 200 else {}


def test_a_full_disk_loses_nothing_acknowledged_and_says_so(tmp_path: Path) -> None:
    broker = Broker(require_binary("mosquitto"), tmp_path / "mqtt")
    site = tmp_path / "site"
    api = free_port()
    with tmpfs(site / "state", "16m") as disk:
        broker.start()
        inverter = steady_inverter()
        meter: Meter | None = None
        daemon: Daemon | None = None
        try:
            config = write_config(
                site, api_port=api, modbus_port=inverter.port, mqtt_url=broker.url, poll="200ms"
            )
            for plant in ("brassemonte", "roof"):
                (site / f"{plant}.csv").write_text("backer,amount\nann,1\n")
                done = heliod(
                    config, "backers", "import", "--plant", plant, str(site / f"{plant}.csv")
                )
                assert done.returncode == 0, done.stderr
            daemon = Daemon(config, api)
            daemon.wait_for("the MQTT session", partial(_says, daemon, "mqtt: connected"))
            meter = Meter(broker)
            daemon.wait_for("a MWh", partial(_says, daemon, "minted MWh 1 of brassemonte"))
            assert _health(daemon)["store"]["state"] == "ok"

            filler = fill(disk)  # the SD card is full
            full_since = time.time()
            body = daemon.wait_for(
                "/healthz store: error",
                lambda: (h := _health(daemon)) and h["store"]["state"] == "error" and h,
            )
            assert body["status"] == "degraded"
            assert "database or disk is full" in body["store"]["last_error"]
            assert body["store"]["free_bytes"] == 0
            assert any(r.startswith("The store failed to write: ") for r in body["reasons"])
            failing = daemon.wait_for(
                "the accountant failing",
                lambda: (h := _health(daemon)) and h["jobs"]["accountant"]["state"] == "failing",
            )
            assert failing
            sent_while_full = len(meter.sent)
            time.sleep(3)  # readings keep arriving: the broker queues, the poller buffers
            assert len(meter.sent) > sent_while_full
            filler.unlink()  # space is freed
            full_for = time.time() - full_since
            daemon.wait_for(
                "/healthz store: ok",
                lambda: (h := _health(daemon)) and h["store"]["state"] == "ok",
            )
            meter.stop()
            sent = {wh * 1000 for wh in meter.sent}  # mWh, as stored
            stored = Store.open(f"sqlite:///{disk / 'heliod.db'}", migrate=False)
            try:

                def caught_up() -> bool:
                    with stored.read() as conn:
                        r = t.readings.c
                        values = {
                            int(v)
                            for (v,) in conn.execute(
                                select(r.energy_mwh).where(r.device == "meter1")
                            )
                        }
                        position = repo.load_state(conn).position
                        last = conn.execute(select(func.max(r.id))).scalar() or 0
                    return sent <= values and last - position <= 2

                daemon.wait_for("every acknowledged message stored", caught_up, timeout=60)
            finally:
                stored.close()
            _, metrics = daemon.get("/metrics", token=False)
            assert "heliod_poller_dropped_readings_total 0.0" in metrics  # none lost
            inverter.stop()
            code, _ = daemon.terminate()
            assert code == 0, daemon.log()[-3000:]
        finally:
            if meter is not None:
                meter.stop()
            inverter.stop()
            if daemon is not None and daemon.proc.poll() is None:
                daemon.kill()
            broker.stop()

        log = daemon.log()
        minted = [line.split(": ", 1)[1] for line in log.splitlines() if " minted MWh " in line]
        assert minted, log[-3000:]
        assert len(minted) == len(set(minted)), "a rolled-back mint was logged"
        assert "database or disk is full" in log

        verify = heliod(config, "ledger", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        stored = Store.open(f"sqlite:///{disk / 'heliod.db'}", migrate=False)
        try:
            with stored.read() as conn:
                state = repo.load_state(conn)
                r = t.readings.c
                first = {
                    d: int(
                        conn.execute(
                            select(r.energy_mwh)
                            .where(r.device == d, r.energy_mwh.is_not(None))
                            .order_by(r.id)
                            .limit(1)
                        ).scalar_one()
                    )
                    for d in ("inv1", "meter1")
                }
                # Modbus readings polled while the disk was full were kept and stored after.
                polled_meanwhile = conn.execute(
                    select(func.count()).where(
                        r.device == "inv1",
                        r.ts_us > int(full_since * 1e6) + 1_000_000,
                        r.ts_us < int((full_since + full_for) * 1e6) - 1_000_000,
                    )
                ).scalar_one()
        finally:
            stored.close()
        # Polled every 0.2 s: at least one a second of the full stretch was kept (a poller
        # that dropped what it could not store, counted or not, would have fewer).
        assert polled_meanwhile >= int(full_for) - 2 > 0, (polled_meanwhile, full_for)
        for plant, device in (("brassemonte", "inv1"), ("roof", "meter1")):
            final = state.devices[device].final
            assert final is not None
            assert state.plants[plant].e_mwh == final.value_mwh - first[device]
