"""`check-config`: the same validation the daemon runs at start, and a summary."""

from __future__ import annotations

import argparse
from typing import Any

from heliod.daemon.cli.commands.context import Context
from heliod.daemon.cli.output import print_json


def summary(ctx: Context) -> dict[str, Any]:
    """What the configuration sets up, without secrets and without touching the network."""
    c = ctx.config
    return {
        "config": str(c.path),
        "state_dir": str(c.daemon.state_dir),
        "storage": "postgresql" if c.storage.url.startswith("postgresql") else "sqlite",
        "api": c.api.listen,
        "mqtt": c.mqtt is not None,
        "influxdb": c.influxdb is not None,
        "platform": c.platform is not None,
        "plants": [
            {
                "id": p.id,
                "name": p.name,
                "capacity_kw": p.capacity_kw,
                "timezone": p.timezone,
                "energy_devices": list(p.energy_devices),
                "units_per_mwh": p.reward.units_per_mwh,
                "symbol": p.reward.symbol,
                "devices": [{"id": d.id, "protocol": d.protocol} for d in p.devices],
            }
            for p in c.plants
        ],
    }


def check_config(ctx: Context, _args: argparse.Namespace) -> int:
    """Print a summary of a valid configuration (errors exit 2 before we get here)."""
    data = summary(ctx)
    if ctx.json:
        print_json({"ok": True, **data})
        return 0
    print(f"{data['config']}: OK")
    print(f"  state in {data['state_dir']} ({data['storage']}), API on {data['api']}")
    enabled = [k for k in ("mqtt", "influxdb", "platform") if data[k]]
    print(f"  enabled: {', '.join(enabled) or 'no MQTT, no export, no push'}")
    for p in data["plants"]:
        devices = ", ".join(f"{d['id']} ({d['protocol']})" for d in p["devices"])
        print(
            f'  plant {p["id"]} "{p["name"]}": {p["capacity_kw"]} kW, {p["timezone"]}, '
            f"{p['units_per_mwh']} units of {p['symbol']} per MWh; devices: {devices}; "
            f"energy from {', '.join(p['energy_devices'])}"
        )
    return 0
