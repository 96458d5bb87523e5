"""Running the real `heliod` command in tests, on a configuration written by the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HELIOD = [sys.executable, "-m", "heliod.daemon.cli.main"]

BASE_CONFIG = """
[daemon]
state_dir = "state"

[storage]
url = "{url}"

[[plants]]
id = "p1"
name = "Test plant"
capacity_kw = {capacity}
timezone = "Europe/Paris"
energy_devices = ["inv1"]

[plants.reward]
symbol = "SLR"
tokens_per_mwh = "{tokens}"
decimals = {decimals}

[[plants.devices]]
id = "inv1"
protocol = "modbus"
host = "127.0.0.1"
"""


def write_config(
    folder: Path, url: str, *, capacity: str = "250.0", tokens: str = "1", decimals: int = 8
) -> Path:
    """A small valid configuration in `folder` using the database at `url`."""
    path = folder / "heliod.toml"
    path.write_text(
        BASE_CONFIG.format(url=url, capacity=capacity, tokens=tokens, decimals=decimals)
    )
    return path


def heliod(
    config: Path | None, *args: str, input_: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `heliod [-c config] args...` and return the finished process."""
    cmd = [*HELIOD, *(["-c", str(config)] if config else []), *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, input=input_, timeout=timeout, check=False
    )


def heliod_json(config: Path, *args: str) -> Any:
    """Run a command with --json, require success, and parse its output."""
    proc = heliod(config, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def readings_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    """Write a readings CSV of (timestamp, energy_wh) rows."""
    path.write_text("timestamp,energy_wh\n" + "".join(f"{t},{e}\n" for t, e in rows))
    return path
