"""The screenshots of docs/dashboard.md, taken from `heliod demo` with the system Chromium.

    .venv/bin/python scripts/dashboard_screenshots.py [OUT_DIR]   (default: docs/img)

Starts the demo, waits until its first MWh is minted and the simulated afternoon has come
(a curve, a milestone reached, its banner, the challenge under way), then shoots the page
on a desktop and on a phone, in English and in French, and stops the demo. Needs the test
extra (Playwright) and Debian's chromium; never run `playwright install`.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SHOTS = {
    # name: (viewport width, height, locale)
    "dashboard-desktop-en": (1280, 1450, "en-GB"),
    "dashboard-desktop-fr": (1280, 1450, "fr-FR"),
    "dashboard-phone-en": (390, 1400, "en-GB"),
    "dashboard-phone-fr": (390, 1400, "fr-FR"),
}
WAIT_S = 120  # at most, for the first MWh and a simulated afternoon
AFTERNOON_HOUR = 15


def plant(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(url + "dashboard/data.json", timeout=5).json()
    return dict(body["plants"][0])


def main(out: Path) -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    demo = subprocess.Popen(
        [sys.executable, "-m", "heliod.daemon.cli.main", "demo", "--json", "--duration", "300"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        url = json.loads(demo.stdout.readline())["url"]
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            p = plant(url)
            hour = int(p["last_reading_at"][11:13]) + 1 if p["last_reading_at"] else 0
            if p["mwh_completed"] >= 1 and hour >= AFTERNOON_HOUR:  # CET: UTC + 1 in winter
                break
            time.sleep(1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            for name, (width, height, locale) in SHOTS.items():
                context = browser.new_context(
                    viewport={"width": width, "height": height}, locale=locale
                )
                page = context.new_page()
                page.goto(url)
                page.wait_for_selector("[data-field=energy_mwh][data-value]")
                page.screenshot(path=str(out / f"{name}.png"))
                context.close()
            browser.close()
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
    for name in SHOTS:
        print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img"))
