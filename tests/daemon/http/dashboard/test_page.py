"""The dashboard's page in the system Chromium: never blank, nothing cut off from a 360 px
phone to a desktop, milestones and challenges as they happen, French for a French browser."""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from heliod.daemon.boot.settings import log_signer
from heliod.daemon.http.dashboard.page import language
from heliod.daemon.read import tlog
from tests.daemon.http.dashboard.conftest import (
    CHROMIUM_ARGS,
    Plant,
    Watched,
    dashboard_app,
    make_plant,
    serve,
)
from tests.support import require_binary

PLANT = '[data-plant="brassemonte"]'
REFRESH_S = 10

# Every element's box against the viewport; hidden ones (no box) are skipped.
OVERFLOW_JS = """() => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -0.5 || r.right > vw + 0.5)
      out.push(`${e.tagName}.${e.className} ${r.left.toFixed(1)}..${r.right.toFixed(1)}`);
  }
  return {vw, scroll: document.documentElement.scrollWidth, inner: window.innerWidth, out};
}"""

# Each chart: its card's and canvas's boxes, where every axis label is drawn (measured with
# the axis's own font, centred on its split for x, right-aligned in the axis for y), and
# the bars as drawn: runs of the bar colour along the plot's bottom pixel row.
CHARTS_JS = """id => {
  const v = window.heliodCharts[id];
  const res = {};
  for (const [name, u] of [['power', v.power], ['energy', v.energy]]) {
    const card = u.root.closest('.card').getBoundingClientRect();
    const canvas = u.ctx.canvas;
    const cv = canvas.getBoundingClientRect();
    const k = canvas.width / cv.width;  // device pixels per CSS pixel
    const plotLeft = cv.left + u.bbox.left / k;
    const plotRight = plotLeft + u.bbox.width / k;
    const x = u.axes[0], y = u.axes[1];
    u.ctx.font = x.font[0];
    const xLabels = x._splits.map((s, i) => {
      const w = u.ctx.measureText(x._values[i]).width / k;
      const c = plotLeft + u.valToPos(s, 'x');
      return [x._values[i], c - w / 2, c + w / 2];
    });
    u.ctx.font = y.font[0];
    const yWidest = Math.max(...y._values.map(t => u.ctx.measureText(t).width / k));
    const out = {card: [card.left, card.right], canvas: [cv.left, cv.right],
                 plot: [plotLeft, plotRight], xLabels,
                 yFits: yWidest + y.ticks.size + y.gap <= y._size, bars: []};
    if (name === 'energy') {
      const row = Math.round(u.bbox.top + u.bbox.height - 2);
      const px = u.ctx.getImageData(0, row, canvas.width, 1).data;
      let start = null;
      for (let i = 0; i <= canvas.width; i++) {
        const teal = i < canvas.width && Math.abs(px[4*i] - 15) < 12
          && Math.abs(px[4*i+1] - 118) < 12 && Math.abs(px[4*i+2] - 110) < 12;
        if (teal && start === null) start = i;
        if (!teal && start !== null) { out.bars.push([cv.left + start / k, cv.left + i / k]); start = null; }
      }
    }
    res[name] = out;
  }
  return res;
}"""


def check_layout(page: Any, days_with_energy: int) -> dict[str, Any]:
    """Nothing wider than the viewport; every chart, bar and axis label inside its card."""
    box = page.evaluate(OVERFLOW_JS)
    assert box["scroll"] <= box["inner"], box
    assert box["out"] == [], box["out"][:5]
    charts: dict[str, Any] = page.evaluate(CHARTS_JS, "brassemonte")
    for name, c in charts.items():
        left, right = c["card"]
        assert left <= c["canvas"][0] and c["canvas"][1] <= right, (name, c)
        assert c["yFits"], name
        assert c["xLabels"], name
        for text, lo, hi in c["xLabels"]:
            assert left <= lo and hi <= right, (name, text, lo, hi, c["card"])
            assert hi <= c["canvas"][1] + 0.5, (name, text, hi, c["canvas"])
    bars = charts["energy"]["bars"]
    assert len(bars) == days_with_energy, bars
    widths = [hi - lo for lo, hi in bars]
    # Today's bar (the last) is as wide as the others, and inside the plot and the card.
    assert max(widths) - min(widths) <= 1.01, widths
    plot_left, plot_right = charts["energy"]["plot"]
    assert plot_left <= bars[0][0] and bars[-1][1] <= plot_right, (bars, plot_right)
    return charts


def chart_boxes(page: Any) -> list[list[float]]:
    return page.eval_on_selector_all(
        f"{PLANT} .plot canvas", "cs => cs.map(c => [c.width, c.height])"
    )


def days_with_energy(plant: dict[str, Any]) -> int:
    return sum(1 for d in plant["energy_days"] if Decimal(d["energy_wh"]) > 0)


@pytest.mark.parametrize("width", [360, 768, 1280])
def test_nothing_is_cut_off(browser: Any, goals_plant: Plant, shots: Path, width: int) -> None:
    with serve(dashboard_app(goals_plant)) as base:
        w = Watched(browser, base, locale="en-US", viewport={"width": width, "height": 900})
        page = w.page
        page.goto(base + "/")
        page.wait_for_selector(f"{PLANT} [data-field=energy_mwh][data-value]")
        p = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        check_layout(page, days_with_energy(p))
        page.screenshot(path=str(shots / f"page-{width}.png"), full_page=True)
        assert w.errors == [] and w.foreign == []
        w.close()


def test_the_chart_follows_its_card_not_the_window_it_was_made_in(
    browser: Any, goals_plant: Plant, shots: Path
) -> None:
    """What `chromium --headless --screenshot --window-size=390,1600` does: the page is laid
    out in a wider window, then shot at 390 px. The charts must follow their card."""
    with serve(dashboard_app(goals_plant)) as base:
        straight = Watched(browser, base, locale="en-US", viewport={"width": 390, "height": 1600})
        straight.page.goto(base + "/")
        straight.page.wait_for_selector(f"{PLANT} [data-field=energy_mwh][data-value]")
        want = chart_boxes(straight.page)
        straight.close()

        w = Watched(browser, base, locale="en-US", viewport={"width": 800, "height": 1600})
        page = w.page
        page.goto(base + "/")
        page.wait_for_selector(f"{PLANT} [data-field=energy_mwh][data-value]")
        assert chart_boxes(page) != want  # wider at first
        page.set_viewport_size({"width": 390, "height": 1600})
        page.wait_for_function(
            "want => JSON.stringify([...document.querySelectorAll('.plot canvas')]"
            ".map(c => [c.width, c.height])) === JSON.stringify(want)",
            arg=want,
            timeout=5000,
        )
        p = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        check_layout(page, days_with_energy(p))
        page.screenshot(path=str(shots / "page-800-then-390.png"), full_page=True)
        assert w.errors == []
        w.close()


def test_chromium_screenshot_mode(goals_plant: Plant, shots: Path) -> None:
    """The newcomer's commands: at the load event (no time budget) the DOM already holds the
    plant's figures; the 390 px screenshot with a time budget is kept as an artifact."""
    chromium = require_binary("chromium")
    with serve(dashboard_app(goals_plant)) as base:
        args = [chromium, *CHROMIUM_ARGS, "--hide-scrollbars"]
        dom = subprocess.run(
            [*args, "--dump-dom", base + "/"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        energy = re.search(r'data-field="energy_mwh" data-value="([0-9.]+)"', dom)
        assert energy is not None, dom[:2000]
        assert Decimal(energy.group(1)) > 8_000_000
        assert 'data-mwh="5" data-state="reached"' in dom
        png = shots / "chromium-screenshot-390.png"
        subprocess.run(
            [
                *args,
                f"--screenshot={png}",
                "--window-size=390,1600",
                "--virtual-time-budget=8000",
                base + "/",
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_first_paint_has_data_or_a_loading_state(
    browser: Any, goals_plant: Plant, private_plant: Plant
) -> None:
    with serve(dashboard_app(goals_plant)) as base:
        # The data comes with the page: with data.json unreachable the plant still shows.
        w = Watched(browser, base, locale="en-US", viewport={"width": 390, "height": 900})
        asked: list[str] = []
        w.page.route("**/dashboard/data.json", lambda r: (asked.append(r.request.url), r.abort()))
        w.page.goto(base + "/", wait_until="domcontentloaded")
        mwh = w.page.locator(f"{PLANT} [data-field=energy_mwh]")
        assert mwh.get_attribute("data-value", timeout=1000) == goals_plant_energy(base)
        assert w.page.locator("#title").inner_text() == "Centrale de Brassemonte"
        assert w.page.title() == "Centrale de Brassemonte — heliod"
        assert w.page.locator("#loading").count() == 0
        assert asked == []  # no request was needed for the first picture
        w.close()
        # Without a script at all the page still says what it is doing.
        bare = Watched(browser, base, java_script_enabled=False, locale="fr-FR")
        bare.page.goto(base + "/")
        assert (
            bare.page.locator("#loading").inner_text() == "Chargement des données de la centrale…"
        )
        assert bare.page.locator("html").get_attribute("lang") == "fr"
        bare.close()
    with serve(dashboard_app(private_plant)) as base:
        page = httpx.get(base + "/", headers={"Accept-Language": "en"}).text
        assert "heliod-data" not in page and "alice" not in page  # a private page has no data
        assert "Loading the plant's data…" in page


def goals_plant_energy(base: str) -> str:
    energy: str = httpx.get(base + "/dashboard/data.json").json()["plants"][0]["energy_wh"]
    return energy


def test_goals_impact_and_a_milestone_reached_while_the_page_is_open(
    browser: Any, goals_plant: Plant, shots: Path
) -> None:
    with serve(dashboard_app(goals_plant)) as base:
        w = Watched(browser, base, locale="en-US", viewport={"width": 1280, "height": 900})
        page = w.page
        page.goto(base + "/")
        p = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        # Impact, with its source next to the figure.
        assert p["impact"]["source"] == "ADEME Base Carbone, mix moyen"
        co2 = page.locator(f"{PLANT} [data-field=co2_avoided_kg]")
        assert co2.get_attribute("data-value") == p["impact"]["co2_avoided_kg"]
        kg = Decimal(p["impact"]["co2_avoided_kg"]).quantize(Decimal(1))
        assert co2.inner_text() == f"{kg:,} kg"
        source = page.locator(f"{PLANT} [data-field=impact_source]").inner_text()
        assert source == "Source: ADEME Base Carbone, mix moyen (56 g CO₂ per kWh)"
        households = page.locator(f"{PLANT} [data-field=households]")
        assert households.get_attribute("data-value") == p["impact"]["households"]
        alice = next(b for b in p["balances"] if b["backer"] == "alice")
        assert (
            page.locator('[data-backer="alice"] td.co2').get_attribute("data-value")
            == (alice["co2_avoided_kg"])
        )
        # The timeline: reached milestones with their date, the next one with its progress.
        states = page.eval_on_selector_all(
            f"{PLANT} .milestone", "ms => ms.map(m => [m.dataset.mwh, m.dataset.state])"
        )
        assert states == [["1", "reached"], ["5", "reached"], ["9", "next"], ["25", "future"]]
        one = next(m for m in p["milestones"] if m["mwh"] == 1)
        when = page.locator(f'{PLANT} [data-mwh="1"] .when')
        assert when.get_attribute("data-value") == one["reached_at"]
        assert when.inner_text() == "reached on Jun 10, 2024"
        progress = page.locator(f'{PLANT} [data-mwh="9"] .progress-text')
        assert progress.get_attribute("data-value") == p["next_milestone"]["progress"]
        mwh = Decimal(p["energy_wh"]).scaleb(-6).quantize(Decimal("0.001"))
        pct = (Decimal(p["next_milestone"]["progress"]) * 100).quantize(Decimal("0.1"), ROUND_DOWN)
        assert progress.inner_text() == f"next: {mwh} of 9 MWh ({pct} %)"
        # Each challenge: sponsor, deadline, status, progress.
        bench = page.locator(f'{PLANT} [data-challenge="bench"]')
        assert bench.get_attribute("data-status") == "reached"
        trees = page.locator(f'{PLANT} [data-challenge="trees"]')
        assert trees.get_attribute("data-status") == "open"
        assert trees.locator(".sponsor").inner_text() == "Sponsor: Syndicat des eaux"
        assert trees.locator(".deadline").inner_text() == "Deadline: Dec 31, 2024, 11:59 PM"
        assert trees.locator(".progress-text").inner_text() == "40.0 % of 20 MWh"
        assert trees.locator("[role=progressbar]").get_attribute("aria-valuenow") == "40"
        spring = page.locator(f'{PLANT} [data-challenge="spring"]')
        assert spring.get_attribute("data-status") == "missed"
        # Today's MWh 8 reached the bench challenge: its banner is up.
        banner = page.locator(f"{PLANT} .goal-banner")
        assert banner.get_attribute("data-goal") == "brassemonte:challenge:bench"
        assert "thanks to Mairie de Brassemonte" in banner.inner_text()
        # The verifiable ledger: the plant's key and newest checkpoint, the same as the
        # signed note's, and the offline verifier's link.
        check_ledger(page, goals_plant, p)
        page.screenshot(path=str(shots / "goals-before.png"), full_page=True)

        # MWh 9 is minted while the page is open: the milestone and its banner appear.
        page.evaluate("window.__sameDocument = true")
        last_ts, energy, _ = goals_plant.readings[-1]
        goals_plant.clock.now = last_ts + timedelta(minutes=45)
        rows = []
        for i in range(1, 5):  # 3 × 390 kWh confirmed: 8.355 -> 9.525 MWh
            energy += Decimal(390_000)
            rows.append((last_ts + timedelta(minutes=10 * i), energy, Decimal(1_900_000)))
        goals_plant.feed(rows)
        after = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        assert after["mwh_completed"] == 9
        page.wait_for_selector(
            f'{PLANT} [data-mwh="9"][data-state="reached"]', timeout=(REFRESH_S + 5) * 1000
        )
        assert page.evaluate("window.__sameDocument") is True  # no reload
        assert banner.get_attribute("data-goal") == "brassemonte:milestone:9"
        assert banner.inner_text().startswith("Milestone reached: Neuf MWh")
        nine = next(m for m in after["milestones"] if m["mwh"] == 9)
        assert (
            page.locator(f'{PLANT} [data-mwh="9"] .when').get_attribute("data-value")
            == (nine["reached_at"])
        )
        assert page.locator(f'{PLANT} [data-mwh="25"]').get_attribute("data-state") == "next"
        check_ledger(page, goals_plant, after)  # the checkpoint of the new size
        page.screenshot(path=str(shots / "goals-after-milestone.png"), full_page=True)
        assert w.errors == [] and w.foreign == []
        w.close()


def check_ledger(page: Any, plant: Plant, p: dict[str, Any]) -> None:
    signer = log_signer(plant.config)
    with plant.store.read() as conn:
        note = tlog.newest_checkpoint(conn, "brassemonte")
    assert note is not None
    origin, size, root = note.split("\n")[:3]
    assert p["log"] == {
        "origin": origin,
        "vkey": signer.vkey("brassemonte"),
        "checkpoint": note,
        "tree_size": p["mwh_completed"],
        "root": root,
    }
    assert int(size) == p["mwh_completed"]
    block = page.locator(f"{PLANT} .ledger")
    assert block.is_visible()
    assert block.locator("[data-field=vkey]").inner_text() == signer.vkey("brassemonte")
    shown = block.locator("[data-field=tree_size]")
    assert shown.get_attribute("data-value") == size
    assert shown.inner_text() == f"{size} mints"
    assert block.locator("[data-field=root]").get_attribute("data-value") == root
    assert block.locator("a.verifier").get_attribute("href") == "/verify.py"


def test_a_plant_without_a_mint_shows_its_key_but_no_checkpoint(
    browser: Any, tmp_path: Path
) -> None:
    plant = make_plant(tmp_path, public=True, rows=[])
    try:
        with serve(dashboard_app(plant)) as base:
            w = Watched(browser, base, locale="en-US", viewport={"width": 360, "height": 800})
            w.page.goto(base + "/")
            p = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
            assert p["mwh_completed"] == 0
            assert p["log"]["checkpoint"] is None
            block = w.page.locator(f"{PLANT} .ledger")
            assert block.locator("[data-field=vkey]").inner_text() == p["log"]["vkey"]
            assert block.locator("[data-field=tree_size]").count() == 0
            # A new plant: no day with energy yet, today's empty bar only.
            assert w.page.evaluate("window.heliodCharts.brassemonte.energy.data[0].length") == 1
            w.page.screenshot(path=str(tmp_path / "new-plant.png"), full_page=True)
            assert w.errors == []
            w.close()
    finally:
        plant.store.close()


def test_french_browser_gets_the_french_page(browser: Any, goals_plant: Plant, shots: Path) -> None:
    with serve(dashboard_app(goals_plant)) as base:
        w = Watched(browser, base, locale="fr-FR", viewport={"width": 360, "height": 800})
        page = w.page
        page.goto(base + "/")
        assert page.locator("html").get_attribute("lang") == "fr"
        text = page.inner_text("main")
        for words in ("Énergie totale", "Étapes", "Défis", "Parrain : Syndicat des eaux"):
            assert words in text, words
        source = page.locator(f"{PLANT} [data-field=impact_source]").inner_text()
        assert source == "Source : ADEME Base Carbone, mix moyen (56 g de CO₂ par kWh)"
        assert page.locator(f'{PLANT} [data-mwh="1"] .when').inner_text() == (
            "atteinte le 10 juin 2024"
        )
        p = httpx.get(base + "/dashboard/data.json").json()["plants"][0]
        mwh = f"{Decimal(p['energy_wh']).scaleb(-6).quantize(Decimal('0.001'))}".replace(".", ",")
        assert page.locator(f"{PLANT} [data-field=energy_mwh]").inner_text() == f"{mwh} MWh"
        check_layout(page, days_with_energy(p))
        page.screenshot(path=str(shots / "page-360-fr.png"), full_page=True)
        assert w.errors == []
        w.close()


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"),
        ("de-DE,de;q=0.9,fr;q=0.5,en;q=0.4", "fr"),
        ("en-GB,fr;q=0.8", "en"),
        ("fr;q=0, en", "en"),
        ("es", "en"),
        ("fr-CA;q=oops, fr", "fr"),
        ("*", "en"),
    ],
)
def test_the_page_s_language_follows_accept_language(header: str | None, lang: str) -> None:
    assert language(header) == lang


def test_the_french_page_from_the_server(goals_plant: Plant) -> None:
    with TestClient(dashboard_app(goals_plant)) as client:
        page = client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="fr">' in page.text
    assert page.headers["vary"] == "Accept-Language"
    assert '<h1 id="title">Centrale de Brassemonte</h1>' in page.text
    # The data sits in an inert JSON block that cannot close its <script> element.
    block = re.search(r'<script id="heliod-data" type="application/json">(.*?)</script>', page.text)
    assert block is not None and "<" not in block.group(1)


def test_a_store_that_cannot_be_read_leaves_the_page_loading(
    public_plant: Plant, caplog: pytest.LogCaptureFixture
) -> None:
    with public_plant.store.write() as conn:
        conn.exec_driver_sql("DROP TABLE mints")
    with TestClient(dashboard_app(public_plant)) as client:
        page = client.get("/")
        data = client.get("/dashboard/data.json")
    assert page.status_code == 200
    assert 'id="heliod-data"' not in page.text  # no first data: the loading state, then data.json
    assert data.status_code == 503 and data.headers["retry-after"] == "30"
    assert data.json() == {"error": "the store cannot be read now; see the daemon's log"}
    logged = [r.getMessage() for r in caplog.records if r.name == "heliod.http"]
    assert logged and all("cannot read the store" in m and "mints" in m for m in logged)
