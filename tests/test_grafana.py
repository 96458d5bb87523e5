"""The Grafana dashboard queries what heliod exports, through the datasource it provisions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from heliod.adapters.influx.lines import mint_line, reading_lines, reading_prefix

GRAFANA = Path(__file__).resolve().parent.parent / "config" / "grafana"


def _exported_fields() -> dict[str, set[str]]:
    """Measurement → fields, from lines built by the exporter's own code."""
    lines = reading_lines([(1, "d", 0, 1, 1, None)], {"d": reading_prefix("p", "d")}).decode()
    lines += "\n" + mint_line("p", 1, 0, 10**8, 8)
    out: dict[str, set[str]] = {}
    for line in lines.splitlines():
        head, fields, _ts = line.split(" ")
        out.setdefault(head.split(",")[0], set()).update(f.split("=")[0] for f in fields.split(","))
    return out


def test_dashboard_uses_the_provisioned_datasource_and_exported_fields() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/heliod.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "Flux"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/heliod.yaml").read_text())
    assert providers["providers"][0]["type"] == "file"

    dashboard = json.loads((GRAFANA / "dashboards/heliod.json").read_text())
    exported = _exported_fields()
    assert exported == {
        "reading": {"energy_wh", "power_w"},
        "mint": {"mwh_index", "units", "tokens"},
    }
    queried: set[tuple[str, str]] = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]
            query = target["query"]
            assert 'r.plant == "${plant}"' in query, panel["title"]
            for measurement, field in re.findall(
                r'r\._measurement == "(\w+)" and r\._field == "(\w+)"', query
            ):
                assert field in exported[measurement], (panel["title"], measurement, field)
                queried.add((measurement, field))
    # Power, energy, MWh and tokens minted are all on the dashboard.
    assert {
        ("reading", "power_w"),
        ("reading", "energy_wh"),
        ("mint", "mwh_index"),
        ("mint", "tokens"),
    } <= queried
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Power", "Energy per day (last 30 days)", "MWh completed", "Tokens minted"} <= titles
