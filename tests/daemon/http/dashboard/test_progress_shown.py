"""The page shows progress rounded down (docs/milestones.md): 99.996 % of a MWh is
"99.9 %", never "100.0 %" before the MWh is completed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.daemon.http.dashboard.conftest import Plant, Watched, dashboard_app, serve


def test_a_mwh_almost_completed_is_not_shown_as_100_percent(
    browser: Any, public_plant: Plant
) -> None:
    with serve(dashboard_app(public_plant)) as base:
        p = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        # Readings that bring E to 40 Wh short of the next MWh (steps within the bound),
        # then one that confirms the last of them.
        # The fixture's last reading is still pending: its step enters E first.
        last_ts, energy, _ = public_plant.readings[-1]
        pending = energy - public_plant.readings[-2][1]
        missing = (p["mwh_completed"] + 1) * 1_000_000 - 40 - Decimal(p["energy_wh"]) - pending
        rows = []
        steps = int(missing // 390_000) + 1
        for i in range(1, steps + 1):
            energy += missing / steps
            rows.append((last_ts + timedelta(minutes=10 * i), energy, Decimal(1_900_000)))
        rows.append((last_ts + timedelta(minutes=10 * (steps + 1)), energy, Decimal(0)))
        public_plant.clock.now = rows[-1][0] + timedelta(minutes=1)
        public_plant.feed(rows)
        p = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        assert p["next_mwh_progress"] == "0.999960000"
        w = Watched(browser, base, locale="en-US", viewport={"width": 1280, "height": 900})
        page = w.page
        page.goto(base + "/")
        shown = page.locator('[data-plant="brassemonte"] [data-field="next_mwh_progress"]')
        shown.wait_for()
        page.wait_for_function(
            """() => document.querySelector(
                '[data-plant="brassemonte"] [data-field="next_mwh_progress"]'
            ).getAttribute('data-value') === '0.999960000'"""
        )
        assert shown.inner_text() == "99.9 %"
        w.close()
