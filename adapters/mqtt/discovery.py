"""Home Assistant MQTT discovery: one device per plant, sensors read from the retained state."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

DISCOVERY_PREFIX = "homeassistant"
CO2_SENSOR = "co2_avoided"


@dataclass(frozen=True, slots=True)
class PlantInfo:
    """What the publisher needs to know about a plant."""

    id: str
    name: str = ""
    symbol: str = ""  # token symbol, e.g. "SLR"
    tokens_per_mwh: Decimal | None = None  # None: no token sensor
    co2_source: str | None = None  # the impact figures' source; None: no CO2 sensor


def _sensor(key: str, name: str, template: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    return key, {"name": name, "value_template": template, **extra}


def sensors(plant: PlantInfo) -> list[tuple[str, dict[str, Any]]]:
    """(object id, config fragment) of every sensor heliod announces for `plant`."""
    found = [
        # HA's energy dashboard wants device_class energy + state_class total_increasing.
        _sensor(
            "energy",
            "Energy",
            "{{ value_json.energy_wh }}",
            unit_of_measurement="Wh",
            device_class="energy",
            state_class="total_increasing",
        ),
        _sensor(
            "power",
            "Power",
            "{{ value_json.power_w }}",
            unit_of_measurement="W",
            device_class="power",
            state_class="measurement",
        ),
        _sensor(
            "mwh_completed",
            "MWh completed",
            "{{ value_json.mwh_completed }}",
            unit_of_measurement="MWh",
            state_class="total_increasing",
            icon="mdi:counter",
        ),
        _sensor(
            "next_mwh_progress",
            "Progress to next MWh",
            "{{ (value_json.next_mwh_progress | float * 100) | round(1) }}",
            unit_of_measurement="%",
            state_class="measurement",
            icon="mdi:progress-clock",
        ),
    ]
    if plant.tokens_per_mwh is not None:
        # Display only: the ledger's integer units are the truth, not this template.
        found.append(
            _sensor(
                "tokens_minted",
                "Tokens minted",
                f"{{{{ (value_json.mwh_completed | int) * {plant.tokens_per_mwh} }}}}",
                unit_of_measurement=plant.symbol or None,
                state_class="total_increasing",
                icon="mdi:hand-coin",
            )
        )
    if plant.co2_source is not None:
        found.append(
            _sensor(
                CO2_SENSOR,
                "CO2 avoided",
                "{{ value_json.co2_avoided_kg }}",
                unit_of_measurement="kg",
                device_class="weight",
                state_class="total",  # it moves back if the emission factor is lowered
                icon="mdi:molecule-co2",
                # The figure's source travels with it (docs/milestones.md): an attribute
                # read from the state topic.
                json_attributes_template='{{ {"source": value_json.co2_source} | tojson }}',
            )
        )
    return found


def discovery_messages(prefix: str, plant: PlantInfo) -> list[tuple[str, dict[str, Any] | None]]:
    """(config topic, config payload) for every sensor of `plant`; None removes a sensor
    that heliod may have announced before (the CO2 sensor once [plants.impact] is gone)."""
    node = f"heliod_{plant.id}"
    base = f"{prefix}/{plant.id}"
    device = {
        "identifiers": [node],
        "name": plant.name or plant.id,
        "manufacturer": "heliod",
        "model": "solar plant gateway",
    }
    messages: list[tuple[str, dict[str, Any] | None]] = []
    for key, fragment in sensors(plant):
        if "json_attributes_template" in fragment:
            fragment["json_attributes_topic"] = f"{base}/state"
        config = {
            **{k: v for k, v in fragment.items() if v is not None},
            "unique_id": f"{node}_{key}",
            # Home Assistant 2025.10 deprecated `object_id` (ignored from 2026.4) for this
            # full entity id, domain included.
            "default_entity_id": f"sensor.{node}_{key}",
            "state_topic": f"{base}/state",
            "availability_topic": f"{base}/availability",
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        }
        messages.append((f"{DISCOVERY_PREFIX}/sensor/{node}/{key}/config", config))
    if plant.co2_source is None:
        messages.append((f"{DISCOVERY_PREFIX}/sensor/{node}/{CO2_SENSOR}/config", None))
    return messages
