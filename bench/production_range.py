"""The production route over long ranges: hourly sums against 5-minute buckets (issue 6).

  python bench/production_range.py [--days 400] [--devices 20] [--repeat 5]

Builds a SQLite store holding `days` of accepted energy for one plant of `devices`
devices, in both rollups the accountant keeps: a 5-minute bucket per device (400 days ×
20 devices ≈ 2.3 million rows) and the plant's hourly sums (9,600 rows), inserted
directly (accounting is not what is measured). Then times
`heliod.daemon.read.production.production()` for the requests the API and the dashboard make,
the plant as a whole (hourly sums where every step starts on a whole UTC hour) and the
same request naming every device (always the 5-minute buckets), and checks both give the
same points. Prints one JSON line per request: median and spread of `--repeat` runs, ms.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from heliod.adapters.store import Store
from heliod.daemon.read.production import production
from heliod.rewards.times import to_us

PLANT = "brassemonte"
PARIS = ZoneInfo("Europe/Paris")
BUCKET_US = 300_000_000
HOUR_US = 3_600_000_000
END = datetime(2026, 11, 1, tzinfo=UTC)


def build(path: Path, days: int, devices: int) -> tuple[int, int]:
    """The store; returns (5-minute buckets, hourly rows)."""
    Store.open(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")  # building the fixture only
    start = to_us(END - timedelta(days=days))
    buckets = days * 288
    hours: dict[int, int] = {}

    def rows() -> Iterator[tuple[str, str, int, int]]:
        for i in range(buckets):
            at = start + i * BUCKET_US  # every bucket holds energy: the worst case
            for d in range(devices):
                e_mwh = 1_000_000 + 37 * d + i % 1000
                hours[at - at % HOUR_US] = hours.get(at - at % HOUR_US, 0) + e_mwh
                yield PLANT, f"inv{d:02d}", at, e_mwh

    db.executemany("INSERT INTO energy_buckets VALUES (?, ?, ?, ?)", rows())
    db.executemany(
        "INSERT INTO energy_hourly VALUES (?, ?, ?)", [(PLANT, h, e) for h, e in hours.items()]
    )
    db.commit()
    n = db.execute("SELECT count(*) FROM energy_buckets").fetchone()[0]
    db.close()
    return int(n), len(hours)


def timed(
    store: Store, devices: list[str] | None, days: int, step: str, repeat: int
) -> dict[str, Any]:
    """Median and spread of `repeat` calls, ms, and the points of the last one."""
    to = to_us(END)
    since = to_us(END - timedelta(days=days))
    times = []
    points = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with store.read() as conn:
            points = production(conn, PLANT, devices, since, to, step=step, tz=PARIS)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "ms_median": round(statistics.median(times), 1),
        "ms_min": round(min(times), 1),
        "ms_max": round(max(times), 1),
        "points": [(p.t_us, p.energy_wh) for p in points],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    names = [f"inv{d:02d}" for d in range(args.devices)]
    requests = [("5m", 1), ("1h", 30), ("1d", 30), ("1d", args.days), ("1h", args.days)]
    with tempfile.TemporaryDirectory(prefix="heliod-bench-") as tmp:
        buckets, hours = build(Path(tmp) / "heliod.db", args.days, args.devices)
        print(json.dumps({"energy_buckets": buckets, "energy_hourly": hours}), flush=True)
        store = Store.open(f"sqlite:///{Path(tmp) / 'heliod.db'}")
        for step, days in requests:
            if step != "1d" and days * 86_400 // {"5m": 300, "1h": 3600}[step] > 10_000:
                continue  # beyond the route's 10,000 points
            plant = timed(store, None, days, step, args.repeat)
            each = timed(store, names, days, step, args.repeat)
            assert plant.pop("points") == each.pop("points"), (step, days)
            line = {"step": step, "days": days, "plant (hourly where possible)": plant}
            print(json.dumps({**line, "every device named (5-minute buckets)": each}), flush=True)
        store.close()


if __name__ == "__main__":
    main()
