"""A plant with a month of history in a real store, served by a real uvicorn, for the dashboard;
the system Chromium (through Playwright) to look at it, and where its screenshots go."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from fastapi import FastAPI

from heliod.adapters.store import Store
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.settings import all_goals, http_settings, log_signer, plant_books
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.config import Config, load_config
from heliod.daemon.http.auth import bearer_auth
from heliod.daemon.http.dashboard import dashboard_router
from heliod.daemon.jobs.accountant import Accountant
from heliod.rewards.readings import Reading
from heliod.rewards.times import to_us
from tests.support import REQUIRE_SERVICES, free_port, require_binary, wait_port

TZ = ZoneInfo("Europe/Paris")
# A fixed "now" (a summer afternoon in Paris) so the day's curve never depends on the hour
# the tests run at; the server and the store both read this clock.
START = datetime(2024, 6, 15, 14, 2, tzinfo=TZ)
TOKEN = "s3cret-dashboard-token"
UNITS_PER_MWH = 10 * 10**8  # tokens_per_mwh = "10", decimals = 8

CONFIG = """
[api]
listen = "127.0.0.1:8080"
tokens = [{{ name = "owner", sha256 = "{sha}" }}]
dashboard_public = {public}

[[plants]]
id = "brassemonte"
name = "Centrale de Brassemonte"
capacity_kw = 2000.0
timezone = "Europe/Paris"
energy_devices = ["inv1", "inv2"]

[plants.reward]
symbol = "SLR"
tokens_per_mwh = "10"
decimals = 8
start = "2020-01-01T00:00:00Z"

[[plants.devices]]
id = "inv1"
protocol = "modbus"
host = "127.0.0.1"
port = 1502
profile = "sunspec"
poll_interval = "10m"

[[plants.devices]]
id = "inv2"
protocol = "modbus"
host = "127.0.0.1"
port = 1503
profile = "sunspec"
"""


@dataclass
class Clock:
    """A settable clock in µs, shared by the store writes and the dashboard."""

    now: datetime = START

    def __call__(self) -> int:
        return int(to_us(self.now))


@dataclass
class Plant:
    """The fixture plant: its store, config, clock and every reading fed so far."""

    store: Store
    config: Config
    clock: Clock
    readings: list[tuple[datetime, Decimal, Decimal]] = field(default_factory=list)

    def feed(self, rows: list[tuple[datetime, Decimal, Decimal]]) -> None:
        """Ingest (ts, energy_wh, power_w) readings of inv1 and run the real accountant."""
        self.store.ingest(
            [Reading("inv1", ts, {"energy_wh": e, "power_w": p}) for ts, e, p in rows],
            self.clock(),
        )
        self.readings.extend(rows)
        accountant = Accountant(
            self.store,
            plant_books(self.config),
            self.clock,
            goals=all_goals(self.config),
            log=log_signer(self.config),
        )
        accountant.run()

    def accepted_deltas(self) -> list[tuple[datetime, Decimal]]:
        """(P's time, Δ) of every confirmed step: all but the pending last reading."""
        r = self.readings
        return [(r[i][0], r[i][1] - r[i - 1][1]) for i in range(1, len(r) - 1)]


def history() -> list[tuple[datetime, Decimal, Decimal]]:
    """Five sunny days (120 kWh an hour, 07:00-19:00) and today until 14:00, every 10 min."""
    rows: list[tuple[datetime, Decimal, Decimal]] = []
    energy = Decimal("1000000.000")  # the counter does not start at zero
    for back in range(5, 0, -1):
        day = START.date() - timedelta(days=back)
        for hour in range(7, 20):
            if hour > 7:
                energy += Decimal(120_000)
            ts = datetime(day.year, day.month, day.day, hour, tzinfo=TZ)
            rows.append((ts, energy, Decimal(120_000) if hour > 7 else Decimal(0)))
    midnight = datetime(START.year, START.month, START.day, tzinfo=TZ)
    for step in range(6 * 6, 6 * 14 + 1):  # 06:00 .. 14:00
        ts = midnight + timedelta(minutes=10 * step)
        power = Decimal(200_000) - abs(Decimal(step - 66)) * Decimal("4321.5")
        energy += power / 6  # W over 10 minutes, in Wh
        energy = energy.quantize(Decimal("0.001"))
        rows.append((ts, energy, power.quantize(Decimal("0.001"))))
    return rows


def backers_csv() -> str:
    """Three named backers and 60 small ones: enough that the search box matters."""
    lines = ["backer,amount,valid_from", "alice,100,2020-01-01", "bob,50,2020-01-01"]
    lines.append("carol,50,2020-01-01")
    lines.extend(f"backer-{i:03d},1,2020-01-01" for i in range(60))
    return "\n".join(lines) + "\n"


# Milestones (the default ones are 1 and 10 MWh: these are closer together), an open
# challenge, one reached today (the fixture's MWh 8), one missed, and impact figures.
GOALS = """
[plants.impact]
co2_g_per_kwh = "56"
household_kwh_per_year = "4700"
source = "ADEME Base Carbone, mix moyen"

[[plants.milestones]]
mwh = 1

[[plants.milestones]]
mwh = 5

[[plants.milestones]]
mwh = 9
title = "Neuf MWh"

[[plants.milestones]]
mwh = 25

[[plants.challenges]]
id = "bench"
title = "8 MWh: the school gets a bench"
goal_mwh = 8
deadline = "2030-01-01T00:00:00"
sponsor = "Mairie de Brassemonte"

[[plants.challenges]]
id = "trees"
title = "20 MWh by the end of the year: 100 trees planted along the river"
goal_mwh = 20
deadline = "2024-12-31T23:59:59"
sponsor = "Syndicat des eaux"

[[plants.challenges]]
id = "spring"
title = "20 MWh by June"
goal_mwh = 20
deadline = "2024-06-01T00:00:00"
sponsor = "Région"
"""


def make_plant(
    tmp_path: Path,
    public: bool,
    extra: str = "",
    rows: list[tuple[datetime, Decimal, Decimal]] | None = None,
) -> Plant:
    """Config file (the base one + `extra`), store, share register and accounted readings
    (`rows`, by default five sunny days and today's morning)."""
    sha = hashlib.sha256(TOKEN.encode()).hexdigest()
    path = tmp_path / "heliod.toml"
    path.write_text(CONFIG.format(sha=sha, public=str(public).lower()) + extra, encoding="utf-8")
    config = load_config(path, env={})
    store = Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")
    clock = Clock()
    with store.write() as conn:
        apply_rows(conn, "brassemonte", parse_register(backers_csv(), TZ), clock())
    plant = Plant(store, config, clock)
    plant.feed(history() if rows is None else rows)
    return plant


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port("127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def dashboard_app(plant: Plant) -> FastAPI:
    """A FastAPI app holding only the dashboard router (no health provider)."""
    app = FastAPI()
    app.include_router(
        dashboard_router(
            plant.store,
            http_settings(plant.config),
            bearer_auth(plant.config.api.tokens),
            None,
            clock_us=plant.clock,
        )
    )
    return app


@pytest.fixture
def public_plant(tmp_path: Path) -> Iterator[Plant]:
    """The fixture plant with dashboard_public = true."""
    plant = make_plant(tmp_path, public=True)
    yield plant
    plant.store.close()


@pytest.fixture
def goals_plant(tmp_path: Path) -> Iterator[Plant]:
    """The public fixture plant with milestones, challenges and impact figures."""
    plant = make_plant(tmp_path, public=True, extra=GOALS)
    yield plant
    plant.store.close()


@pytest.fixture
def private_plant(tmp_path: Path) -> Iterator[Plant]:
    """The fixture plant with dashboard_public = false."""
    plant = make_plant(tmp_path, public=False)
    yield plant
    plant.store.close()


# The system Chromium, never a downloaded one; nothing may reach the network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def playwright_api() -> Any:
    """Playwright's sync API (the test extra installs it; under CI a missing one fails)."""
    if REQUIRE_SERVICES:
        import playwright.sync_api as api

        return api
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser(playwright_api: Any) -> Iterator[Any]:
    """One headless system Chromium for the module."""
    path = require_binary("chromium")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots are kept as test artifacts: `$HELIOD_TEST_ARTIFACTS/screenshots`
    when that variable names a directory (CI uploads it), else under pytest's tmp."""
    chosen = os.environ.get("HELIOD_TEST_ARTIFACTS")
    if chosen:
        path = Path(chosen) / "screenshots"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


class Watched:
    """A page whose console errors, page errors and off-host requests are recorded."""

    def __init__(self, browser: Any, base: str, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "request",
            lambda r: None if r.url.startswith((base, "data:")) else self.foreign.append(r.url),
        )

    def close(self) -> None:
        self.context.close()
