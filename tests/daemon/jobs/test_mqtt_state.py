"""The MQTT `state` with the CO2 figure and its source, `event` after each `mint`, and
each mint and event published once across restarts (a persisted position)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from heliod.adapters.mqtt import MqttPublisher, MqttSettings
from heliod.daemon.boot.settings import all_goals, plant_books, settings_of
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.jobs.mqtt_state import StatePublisher
from tests.adapters.mqtt.broker import Broker, Collector
from tests.daemon.ledger_fixture import make_ledger, now_us
from tests.support import require_binary

GOALS = """
[plants.impact]
co2_g_per_kwh = "56.5"
source = "ADEME Base Carbone, mix moyen"

[[plants.milestones]]
mwh = 1

[[plants.milestones]]
mwh = 2
"""

EVENTS = ("/mint", "/event")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto on a free port."""
    b = Broker(require_binary("mosquitto"), tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def test_events_follow_their_mints_and_the_state_carries_co2(
    tmp_path: Path, broker: Broker
) -> None:
    ledger = make_ledger(tmp_path, alpha_goals=GOALS)
    settings = settings_of(ledger.config)
    publisher = MqttPublisher(MqttSettings(url=broker.url), "heliod", ["alpha", "beta"])
    states = StatePublisher(
        publisher, ledger.store, settings.intervals_us, now_us, impact=settings.impact
    )
    reader = Collector(broker, "heliod/alpha/#")
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        # Readings worth 3 MWh, then one accounting run: mints 1-3 and milestones 1 and 2.
        ledger.goals = True
        readings = [ledger._next("inv1", Decimal(0))]
        readings += [ledger._next("inv1", Decimal(250_000)) for _ in range(12)]
        readings.append(ledger._next("inv1", Decimal(0)))
        ledger.store.ingest(readings, now_us())
        accountant = Accountant(
            ledger.store, plant_books(ledger.config), now_us, goals=all_goals(ledger.config)
        )
        accountant.run()
        states.publish()
        assert publisher.flush(10)
        msgs = reader.wait_for(lambda m: len([x for x in m if x[0].endswith(EVENTS)]) >= 5)
    finally:
        reader.close()
        publisher.stop()
        ledger.store.close()
    sent = [(t.rsplit("/", 1)[1], json.loads(p)) for t, p, _ in msgs if t.endswith(EVENTS)]
    assert [(kind, body["id"]) for kind, body in sent] == [
        ("mint", "alpha:1"),
        ("event", "alpha:milestone:1"),
        ("mint", "alpha:2"),
        ("event", "alpha:milestone:2"),
        ("mint", "alpha:3"),
    ]
    assert sent[1][1]["reached_at"] == sent[0][1]["completed_at"]
    assert all(not retained for t, _, retained in msgs if t.endswith("/event"))
    [state] = [json.loads(p, parse_float=Decimal) for t, p, _ in msgs if t.endswith("/state")]
    # 3,000 kWh × 56.5 g/kWh = 169.5 kg, with the factor's source
    assert state["co2_avoided_kg"] == Decimal("169.500")
    assert state["co2_source"] == "ADEME Base Carbone, mix moyen"
    assert state["mwh_completed"] == 3


def test_a_restart_neither_publishes_a_mint_or_event_again_nor_skips_one(
    tmp_path: Path, broker: Broker
) -> None:
    ledger = make_ledger(tmp_path, alpha_goals=GOALS)
    ledger.goals = True
    settings = settings_of(ledger.config)
    reader = Collector(broker, "heliod/+/+")

    def start() -> tuple[MqttPublisher, StatePublisher]:
        publisher = MqttPublisher(MqttSettings(url=broker.url), "heliod", ["alpha", "beta"])
        states = StatePublisher(
            publisher, ledger.store, settings.intervals_us, now_us, impact=settings.impact
        )
        publisher.start()
        assert publisher.wait_connected(10)
        return publisher, states

    def stop(publisher: MqttPublisher, states: StatePublisher) -> None:
        states.close(10)
        publisher.stop()

    def sent(plant: str) -> list[tuple[str, str]]:
        return [
            (t.rsplit("/", 1)[1], json.loads(p)["id"])
            for t, p, _ in reader.messages
            if t.startswith(f"heliod/{plant}/") and t.endswith(EVENTS)
        ]

    try:
        publisher, states = start()  # the first run: mint 1 and milestone 1
        ledger.produce("alpha", 1)
        states.publish()
        stop(publisher, states)
        ledger.produce("beta", 1)  # `heliod account` while the daemon is down: beta's
        ledger.produce("alpha", 1)  # mint 1 (default milestone 1 too), alpha's mint 2
        publisher, states = start()  # the second run publishes it, and not mint 1 again
        states.publish()
        ledger.produce("alpha", 1)
        states.publish()
        stop(publisher, states)
        reader.wait_for(lambda m: len([x for x in m if x[0].endswith(EVENTS)]) >= 7)
        publisher, states = start()  # a third run with nothing new publishes nothing
        states.publish()
        stop(publisher, states)
        time.sleep(0.5)  # room for a message that should not come
    finally:
        reader.close()
        ledger.store.close()
    assert sent("beta") == [("mint", "beta:1"), ("event", "beta:milestone:1")]
    assert sent("alpha") == [
        ("mint", "alpha:1"),
        ("event", "alpha:milestone:1"),
        ("mint", "alpha:2"),
        ("event", "alpha:milestone:2"),
        ("mint", "alpha:3"),
    ]
