"""`heliod demo` as a newcomer runs it: MWh minted within a minute, dashboard and API answer."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request

from tests.e2e.harness import HELIOD, Lines


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.status, answer.read()


def test_demo_mints_within_a_minute_and_stops_cleanly_on_ctrl_c() -> None:
    started = time.monotonic()
    proc = subprocess.Popen(
        [*HELIOD, "demo", "--duration", "60", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(proc.stdout)
        first = lines.next_json(timeout=20)
        assert first["event"] == "started"
        url, token = first["url"], first["api_token"]
        assert url.startswith("http://127.0.0.1:")

        minted = None
        while time.monotonic() - started < 60:
            _, body = _get(url + "api/v1/plants", token)
            plant = json.loads(body)[0]
            if plant["mwh_completed"] >= 1:
                minted = plant
                break
            time.sleep(1)
        assert minted is not None, "no MWh minted within a minute"
        assert minted["minted"]["units"] == 10_000  # 100 SUN with 2 decimals per MWh

        status, page = _get(url)
        assert status == 200
        assert b"<html" in page.lower()
        status, data = _get(url + "dashboard/data.json")  # public in the demo
        plant_data = json.loads(data)["plants"][0]
        assert plant_data["mwh_completed"] >= 1
        assert sum(b["units"] for b in plant_data["balances"]) + int(
            plant_data["undistributed"]["units"]
        ) == int(plant_data["minted"]["units"])
        status, health = _get(url + "healthz")
        assert json.loads(health)["devices"]["inv1"]["state"] == "ok"

        proc.send_signal(signal.SIGINT)  # Ctrl-C
        stop_started = time.monotonic()
        assert proc.wait(10) == 0
        assert time.monotonic() - stop_started < 10
        last = None
        while True:
            try:
                last = lines.next_json(timeout=2)
            except Exception:
                break
            if last.get("event") == "stopped":
                break
        assert last is not None and last["event"] == "stopped", lines.seen
        assert last["mwh_minted"] >= 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr
