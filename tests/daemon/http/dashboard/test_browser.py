"""The dashboard in headless Chromium: loads clean, draws the API's data, follows new mints."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.daemon.http.dashboard.conftest import TOKEN, Plant, Watched, dashboard_app, serve

REFRESH_S = 10


def en(value: str, digits: int, *, keep: int = 0) -> str:
    """What Intl.NumberFormat("en-US", {maximumFractionDigits: digits}) prints for a decimal."""
    q = Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{q:,.{digits}f}"
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(keep, "0")
        text = f"{whole}.{frac}" if frac else whole
    return text


def shot(page: Any, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def field(page: Any, name: str) -> tuple[str | None, str]:
    node = page.locator(f'[data-plant="brassemonte"] [data-field="{name}"]')
    return node.get_attribute("data-value"), node.inner_text()


def check_page_shows(page: Any, p: dict[str, Any]) -> None:
    """Every figure on the page is data.json's value, formatted in en-US."""
    mwh = str(Decimal(p["energy_wh"]).scaleb(-6))
    # MWh always with 3 decimals: the figure keeps its format from one refresh to the next.
    assert field(page, "energy_mwh") == (p["energy_wh"], f"{en(mwh, 3, keep=3)} MWh")
    assert field(page, "mwh_completed") == (str(p["mwh_completed"]), str(p["mwh_completed"]))
    assert field(page, "minted") == (p["minted"]["amount"], f"{en(p['minted']['amount'], 8)} SLR")
    # Progress is cut to 0.1 %, never rounded up to a MWh not completed yet.
    percent = (Decimal(p["next_mwh_progress"]) * 100).quantize(Decimal("0.1"), ROUND_DOWN)
    assert field(page, "next_mwh_progress") == (p["next_mwh_progress"], f"{percent} %")
    lengths = page.evaluate(
        """id => { const v = window.heliodCharts[id];
            return [v.power.data[0].length, v.power.data[1].length,
                    v.energy.data[1].length, v.energy.data[1]] }""",
        "brassemonte",
    )
    # The 30-day chart starts at the first day with energy.
    days = [Decimal(d["energy_wh"]) for d in p["energy_days"]]
    first = next(i for i, e in enumerate(days) if e > 0)
    assert days[:first] == [0] * first
    assert lengths[:3] == [len(p["power_today"]["points"])] * 2 + [30 - first]
    assert lengths[3] == [float(e / 1000) for e in days[first:]]
    alice = next(b for b in p["balances"] if b["backer"] == "alice")
    cell = page.locator('[data-backer="alice"] td.num')
    assert cell.get_attribute("data-value") == alice["amount"]
    assert cell.inner_text() == f"{en(alice['amount'], 8)} SLR"


def test_public_dashboard_draws_the_data_and_follows_a_new_mint(
    browser: Any, public_plant: Plant, shots: Path
) -> None:
    with serve(dashboard_app(public_plant)) as base:
        w = Watched(browser, base, locale="en-US", viewport={"width": 1280, "height": 900})
        page = w.page
        page.goto(base + "/")
        page.wait_for_selector('[data-plant="brassemonte"] [data-field="energy_mwh"][data-value]')
        p = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        check_page_shows(page, p)
        # uPlot drew on canvases of a real size.
        sizes = page.eval_on_selector_all(
            '[data-plant="brassemonte"] .plot canvas', "cs => cs.map(c => [c.width, c.height])"
        )
        assert len(sizes) == 2
        assert all(wd > 200 and h > 100 for wd, h in sizes)
        assert page.locator("h3").first.inner_text() != ""
        assert page.locator('[data-device="inv2"]').get_attribute("data-state") == "stale"
        # No [plants.impact], no challenge: their blocks are not on the page; the default
        # milestones (1, 10, 100, 1000 and 10000 MWh) are.
        for block in (".impact", ".challenges", "th.co2"):
            assert page.locator(f'[data-plant="brassemonte"] {block}').is_hidden(), block
        assert page.eval_on_selector_all(
            ".milestone", "ms => ms.map(m => [m.dataset.mwh, m.dataset.state])"
        ) == [["1", "reached"], ["10", "next"]] + [[m, "future"] for m in ("100", "1000", "10000")]
        assert page.locator("#title").inner_text() == "Centrale de Brassemonte"
        # 63 backers, 50 shown: the search box finds one.
        assert page.locator("tbody tr").count() == 50
        page.fill(".search", "caro")
        assert page.locator("tbody tr").count() == 1
        page.fill(".search", "")
        shot(page, shots, "dashboard-desktop")

        # A new MWh: readings that carry E past the next boundary, then the real accountant.
        page.evaluate("window.__sameDocument = true")
        before = p["mwh_completed"]
        last_ts, energy, _ = public_plant.readings[-1]
        public_plant.clock.now = last_ts + timedelta(minutes=45)
        rows = []
        for i in range(1, 5):  # 3 × 390 kWh confirmed (the bound is 400 kWh per 10 min)
            energy += Decimal(390_000)
            rows.append((last_ts + timedelta(minutes=10 * i), energy, Decimal(1_900_000)))
        public_plant.feed(rows)
        after = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        assert after["mwh_completed"] > before
        page.wait_for_function(
            """n => document.querySelector('[data-field="mwh_completed"]')
                .getAttribute('data-value') === String(n)""",
            arg=after["mwh_completed"],
            timeout=(REFRESH_S + 5) * 1000,
        )
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        check_page_shows(page, after)
        shot(page, shots, "dashboard-after-mint")
        assert w.errors == []
        assert w.foreign == []
        w.close()


def test_phone_and_french(browser: Any, public_plant: Plant, shots: Path) -> None:
    with serve(dashboard_app(public_plant)) as base:
        w = Watched(
            browser,
            base,
            locale="fr-FR",
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
        )
        page = w.page
        page.goto(base + "/")
        page.wait_for_selector('[data-field="energy_mwh"][data-value]')
        p = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        assert page.locator("html").get_attribute("lang") == "fr"
        assert "Énergie totale" in page.inner_text("main")
        # fr-FR: decimal comma, narrow no-break space between thousands.
        mwh = en(str(Decimal(p["energy_wh"]).scaleb(-6)), 3).replace(",", "\u202f")
        assert field(page, "energy_mwh")[1] == f"{mwh.replace('.', ',')} MWh"
        # Nothing wider than the phone's screen.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot(page, shots, "dashboard-phone-fr")
        page.click("#lang")  # the toggle switches to English without a reload
        assert "Lifetime energy" in page.inner_text("main")
        assert w.errors == []
        w.close()


def test_private_dashboard_asks_for_a_token(
    browser: Any, private_plant: Plant, shots: Path
) -> None:
    with serve(dashboard_app(private_plant)) as base:
        assert httpx.get(base + "/dashboard/data.json").status_code == 401
        w = Watched(browser, base, locale="en-US")
        page = w.page
        page.goto(base + "/")
        page.wait_for_selector("#login:not([hidden])")
        assert page.locator("[data-plant]").count() == 0
        shot(page, shots, "dashboard-token-prompt")
        page.fill("#token", TOKEN)
        page.click("#login button[type=submit]")
        page.wait_for_selector('[data-field="energy_mwh"][data-value]')
        body = httpx.get(
            base + "/dashboard/data.json", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
        check_page_shows(page, body["plants"][0])
        assert page.evaluate("sessionStorage.getItem('heliod.token')") == TOKEN
        assert page.locator("#login").is_hidden()
        assert w.errors == []
        # A refused token (revoked, mistyped) brings the prompt back with a message.
        page.evaluate("sessionStorage.setItem('heliod.token', 'wrong')")
        page.reload()
        page.wait_for_selector("#login-error:not([hidden])")
        assert page.evaluate("sessionStorage.getItem('heliod.token')") is None
        assert [e for e in w.errors if "401" not in e] == []
        w.close()


def test_data_json_is_only_what_the_page_shows(public_plant: Plant) -> None:
    with serve(dashboard_app(public_plant)) as base:
        body = httpx.get(base + "/dashboard/data.json").json()
    keys = set(body["plants"][0])
    assert keys == {
        "id", "name", "timezone", "locale", "capacity_kw", "energy_wh", "mwh_completed",
        "next_mwh_progress", "minted", "undistributed", "last_reading_at", "power_today",
        "energy_days", "balances", "devices",
        "impact", "milestones", "next_milestone", "challenges", "banner", "log",
    }  # fmt: skip
    assert "event" not in json.dumps(body)  # no push bodies or ledger internals leak
