"""Two plants with a real store and the real accountant, for the API, push and register tests.

`alpha` (device inv1, 1 token per MWh, 8 decimals, three equal backers) and `beta` (inv2,
2.5 tokens per MWh, 2 decimals, two backers). `produce` feeds counter readings through
the store's ingest gate and runs the accountant, so every mint, credit, anomaly and push
body in these tests is the one heliod itself commits.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from heliod.adapters.store import Store
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.settings import all_goals, log_signer, plant_books
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.config import Config, load_config
from heliod.daemon.jobs.accountant import Accountant
from heliod.rewards.readings import Reading

TOKEN = "test-token-for-the-platform"
OTHER_TOKEN = "a-second-client-token"
SECRET = "whsec-test-platform-secret"
START = datetime(2024, 3, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)
STEP_WH = Decimal(250_000)  # 4 steps = 1 MWh; capacity 2000 kW allows 400 kWh per 10 min

CONFIG = """
[api]
tokens = [{{ name = "platform", sha256 = "{sha}" }}, {{ name = "other", sha256 = "{sha2}" }}]
dashboard_public = {public}
{platform}
[[plants]]
id = "alpha"
name = "Centrale Alpha"
capacity_kw = 2000.0
timezone = "Europe/Paris"
energy_devices = ["inv1"]

[plants.reward]
symbol = "SLR"
tokens_per_mwh = "1"
decimals = 8
{alpha_goals}
[[plants.devices]]
id = "inv1"
protocol = "modbus"
host = "127.0.0.1"
port = 1502
profile = "sunspec"

[[plants]]
id = "beta"
name = "Centrale Beta"
capacity_kw = 2000.0
timezone = "America/New_York"
energy_devices = ["inv2"]

[plants.reward]
symbol = "BET"
tokens_per_mwh = "2.5"
decimals = 2

[[plants.devices]]
id = "inv2"
protocol = "modbus"
host = "127.0.0.1"
port = 1503
profile = "sunspec"
"""

REGISTERS = {
    "alpha": "backer,amount,valid_from\nalice,100,\nbob,100,\ncarol,100,\n",
    "beta": "backer,amount\ndave,2\nerin,1\n",
}
DEVICES = {"alpha": "inv1", "beta": "inv2"}


def now_us() -> int:
    """The real clock: readings are in 2024, so never in the future."""
    return time.time_ns() // 1000


@dataclass
class Ledger:
    """A store, its configuration, and where each device's counter stands."""

    store: Store
    config: Config
    path: Path
    counters: dict[str, tuple[datetime, Decimal]] = field(default_factory=dict)
    goals: bool = False  # True: the accountant also commits milestone and challenge events

    def _next(self, device: str, delta: Decimal) -> Reading:
        ts, energy = self.counters.get(device, (START, Decimal(5_000_000)))
        ts, energy = ts + STEP, energy + delta
        self.counters[device] = (ts, energy)
        return Reading(device, ts, {"energy_wh": energy, "power_w": Decimal(1500000)})

    def account(self) -> list[tuple[str, int]]:
        """Run the real accountant; returns the (plant, k) it minted."""
        goals = all_goals(self.config) if self.goals else ()
        return (
            Accountant(
                self.store,
                plant_books(self.config),
                now_us,
                goals=goals,
                log=log_signer(self.config),
            )
            .run()
            .mints
        )

    def produce(self, plant: str, mwh: int, step_wh: Decimal = STEP_WH) -> list[tuple[str, int]]:
        """Readings worth 4 × `mwh` steps more (plus the one confirming them), accounted."""
        device = DEVICES[plant]
        readings = [] if device in self.counters else [self._next(device, Decimal(0))]  # baseline
        readings += [self._next(device, step_wh) for _ in range(4 * mwh)]
        readings.append(self._next(device, Decimal(0)))  # confirms the last step
        self.store.ingest(readings, now_us())
        return self.account()

    def anomalies(self, plant: str) -> None:
        """An outlier (a spike the next reading contradicts) and an implausible jump."""
        device = DEVICES[plant]
        base = self.counters[device][1]
        spike = self._next(device, Decimal(50_000_000))
        self.counters[device] = (spike.ts, base)  # the spike does not move the counter
        back = self._next(device, Decimal(1000))
        jump = self._next(device, Decimal(3_000_000))  # > 400 kWh in 10 min: quarantined
        after = self._next(device, Decimal(1000))
        confirm = self._next(device, Decimal(0))
        self.store.ingest([spike, back, jump, after, confirm], now_us())
        self.account()


def write_config(
    tmp_path: Path,
    *,
    public: bool = False,
    push_url: str = "",
    backers_url: str = "",
    alpha_goals: str = "",
) -> Config:
    """The two-plant configuration file, with [platform] when a push URL is given and
    `alpha_goals` (TOML tables: impact, milestones, challenges) in plant alpha."""
    platform = ""
    if push_url:
        (tmp_path / "platform.secret").write_text(SECRET + "\n", encoding="utf-8")
        platform = (
            f'[platform]\npush_url = "{push_url}"\nsecret_file = "platform.secret"\n'
            f'backers_url = "{backers_url}"\ntimeout = "500ms"\nretry_max_interval = "2s"\n'
        )
    path = tmp_path / "heliod.toml"
    path.write_text(
        CONFIG.format(
            sha=hashlib.sha256(TOKEN.encode()).hexdigest(),
            sha2=hashlib.sha256(OTHER_TOKEN.encode()).hexdigest(),
            public=str(public).lower(),
            platform=platform,
            alpha_goals=alpha_goals,
        ),
        encoding="utf-8",
    )
    return load_config(path, env={})


def make_ledger(tmp_path: Path, url: str | None = None, **config_args: object) -> Ledger:
    """A fresh store with both share registers; no readings yet."""
    config = write_config(tmp_path, **config_args)  # type: ignore[arg-type]
    store = Store.open(url or f"sqlite:///{tmp_path / 'heliod.db'}")
    with store.write() as conn:
        for plant, text in REGISTERS.items():
            apply_rows(conn, plant, parse_register(text, config.plant(plant).tz), now_us())
    return Ledger(store, config, tmp_path)
