"""Draining an export backlog to VictoriaMetrics, against a bare HTTP loop.

  python bench/export_backlog.py [--days 7] [--devices 20] [--batch-size 5000] [--rounds 1]
                                 [--gzip]

Builds a SQLite store holding `days` of one-second readings (energy_wh and power_w) from
`devices` devices (7 days × 20 devices ≈ 12.1 million readings; rows are inserted
directly, ingest is not what is measured) with the export outbox the daemon writes while
exporting is on: one row per second, the line protocol of that second's readings (the
poller stores every device's reading of a second in one transaction), rendered by the
daemon's own function. `--formatted` leaves the outbox empty, so every line is formatted
from the readings at export time (readings stored while the export was off). Then, each
round on a fresh VictoriaMetrics (the outbox restored between rounds: the export deletes
the rows it has sent):

1. heliod: `Exporter.drain()` from position 0 (store → line protocol → HTTP → position
   committed per batch), with the RSS of this process sampled every 0.2 s; then, not
   counted in the drain, `Exporter.trim()` deleting the sent outbox rows as the export
   does once idle (its time is printed as `outbox_delete_s`);
2. bare: the same points, pre-built as line protocol in memory beforehand (not timed),
   written batch by batch with bare httpx POSTs to `/api/v2/write` and nothing else.

The two alternate which goes first from round to round. Prints one JSON object per round
(points/s, CPU µs per point of this process and of VictoriaMetrics, RSS, the 1-minute
load average before and after), then the median, minimum and maximum of each figure.
VictoriaMetrics runs on the same machine: on 2 cores, heliod's build of the next batch
competes with it for CPU, so the wall-clock ratio depends on what else the machine runs.
`--gzip` makes heliod's writer compress its bodies (the bare loop never does).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from heliod.adapters.influx import InfluxSettings, InfluxWriter
from heliod.adapters.store import Store
from heliod.adapters.store.export_source import ReadingSource
from heliod.daemon.boot.settings import export_lines
from heliod.daemon.jobs.export.loop import Exporter

T0_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z
VM = "/usr/bin/victoria-metrics"


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float) -> None:
    """Until something listens on the loopback port."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by a process, all its threads."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb() -> float:
    """Resident set size of this process now, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build_store(path: Path, days: int, devices: int, batch_size: int, outbox: bool) -> int:
    """A store holding the backlog (and its outbox); returns the number of readings."""
    Store.open(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")  # building the fixture only; heliod never does this
    names = [f"inv{d:02d}" for d in range(devices)]
    seconds = days * 86_400

    def rows() -> Iterator[
        tuple[str, int, int, int, int]
    ]:  # one reading a second per device: energy grows, power follows the day
        for s in range(seconds):
            ts = T0_US + s * 1_000_000
            power = abs(43_200 - (s % 86_400)) * 1000  # mW
            for d, name in enumerate(names):
                yield name, ts, 1_000_000_000 + s * 70_000 + d, power + d, ts

    db.executemany(
        "INSERT INTO readings (device, ts_us, energy_mwh, power_mw, received_us)"
        " VALUES (?, ?, ?, ?, ?)",
        rows(),
    )
    if outbox:
        lines = export_lines(bench_config(devices, batch_size))
        assert lines is not None

        def groups() -> Iterator[tuple[int, int, int, int, bytes]]:
            cursor = db.execute(
                "SELECT id, device, ts_us, energy_mwh, power_mw, extra FROM readings ORDER BY id"
            )
            while group := cursor.fetchmany(devices):
                body = lines.render(group)
                yield group[-1][0], group[0][0] - 1, len(group), body.count(b"\n") + 1, body

        db.executemany(
            "INSERT INTO export_outbox (last_id, after_id, readings, points, body)"
            " VALUES (?, ?, ?, ?, ?)",
            groups(),
        )
        db.execute(f"CREATE TABLE {OUTBOX_COPY} AS SELECT * FROM export_outbox")
    db.commit()
    db.close()
    return seconds * devices


OUTBOX_COPY = "bench_outbox_copy"  # restored into export_outbox before each heliod drain


def restore_outbox(store: Store) -> None:
    """Put back the outbox rows the previous drain deleted."""
    with store.write() as conn:
        conn.exec_driver_sql("DELETE FROM export_outbox")
        if conn.exec_driver_sql(
            f"SELECT count(*) FROM sqlite_master WHERE name = '{OUTBOX_COPY}'"
        ).scalar():
            conn.exec_driver_sql(f"INSERT INTO export_outbox SELECT * FROM {OUTBOX_COPY}")


def bench_config(devices: int, batch_size: int) -> SimpleNamespace:
    """The parts of a configuration the export reads: one plant, its devices, [influxdb]."""
    plant = SimpleNamespace(
        id="brassemonte", devices=[SimpleNamespace(id=f"inv{d:02d}") for d in range(devices)]
    )
    return SimpleNamespace(
        plants=[plant],
        devices=lambda: [(plant, d) for d in plant.devices],
        influxdb=SimpleNamespace(batch_size=batch_size),
    )


class Victoria:
    """A fresh VictoriaMetrics on a free port."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(dir=root))
        self.proc = subprocess.Popen(
            [
                VM,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.dir}",
                "-retentionPeriod=100y",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, 30)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)


def run_heliod(
    store: Store, vm: Victoria, devices: int, batch_size: int, gzip: bool
) -> dict[str, float]:
    """Drain the whole backlog with the exporter; RSS sampled meanwhile."""
    store.set_position("exporter", 0, 0)
    restore_outbox(store)
    writer = InfluxWriter(InfluxSettings(vm.url, "solar", "heliod", "bench", gzip=gzip))
    plants = {f"inv{d:02d}": "brassemonte" for d in range(devices)}
    exporter = Exporter(
        store, writer, plants, lambda: int(time.time() * 1e6), batch_size=batch_size
    )
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            samples.append(rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    before = rss_mb()
    sampler.start()
    cpu, vm_cpu = cpu_s(), cpu_s(vm.proc.pid)
    start = time.perf_counter()
    points = exporter.drain()
    elapsed = time.perf_counter() - start
    cpu, vm_cpu = cpu_s() - cpu, cpu_s(vm.proc.pid) - vm_cpu
    done.set()
    sampler.join()
    trim = time.perf_counter()
    trimmed = exporter.trim()  # what the export does once idle: delete the sent outbox rows
    trim = time.perf_counter() - trim
    exporter.stop()  # closes the writer and gives the store connections back
    tenth = max(1, len(samples) // 10)
    return {
        "points": points,
        "seconds": round(elapsed, 2),
        "points_per_s": round(points / elapsed),
        "cpu_us_per_point": round(cpu / points * 1e6, 2),
        "vm_cpu_us_per_point": round(vm_cpu / points * 1e6, 2),
        "rss_before_mb": round(before, 1),
        "rss_first_10pct_max_mb": round(max(samples[:tenth], default=before), 1),
        "rss_last_10pct_max_mb": round(max(samples[-tenth:], default=before), 1),
        "rss_peak_mb": round(max(samples, default=before), 1),
        "outbox_rows_deleted_after": trimmed,
        "outbox_delete_s": round(trim, 2),
    }


def prebuild(store: Store, devices: int, batch_size: int) -> list[bytes]:
    """The same points as line protocol, in memory (not timed)."""
    source = ReadingSource(
        store, {f"inv{d:02d}": "brassemonte" for d in range(devices)}, batch_size
    )
    bodies, after = [], 0
    while (batch := source.batch_after(after)).rows:
        bodies.append(batch.body)
        after = batch.last_id
    source.close()
    return bodies


def run_bare(bodies: list[bytes], vm: Victoria) -> dict[str, float]:
    """A bare HTTP loop over pre-built bodies: one httpx POST to /api/v2/write each."""
    client = httpx.Client(timeout=30, headers={"Authorization": "Token bench"})
    url = vm.url + "/api/v2/write"
    params = {"org": "solar", "bucket": "heliod", "precision": "us"}
    points = sum(b.count(b"\n") + 1 for b in bodies)
    cpu, vm_cpu = cpu_s(), cpu_s(vm.proc.pid)
    start = time.perf_counter()
    for body in bodies:
        client.post(url, params=params, content=body).raise_for_status()
    elapsed = time.perf_counter() - start
    cpu, vm_cpu = cpu_s() - cpu, cpu_s(vm.proc.pid) - vm_cpu
    client.close()
    return {
        "points": points,
        "seconds": round(elapsed, 2),
        "points_per_s": round(points / elapsed),
        "cpu_us_per_point": round(cpu / points * 1e6, 2),
        "vm_cpu_us_per_point": round(vm_cpu / points * 1e6, 2),
    }


def load() -> float:
    """1-minute load average."""
    return round(os.getloadavg()[0], 2)


def round_once(
    store: Store, root: Path, args: argparse.Namespace, n: int, heliod_first: bool
) -> dict[str, Any]:
    """One heliod drain and one bare loop, each on a fresh VictoriaMetrics."""
    results: dict[str, dict[str, float]] = {}
    for which in ("heliod", "bare") if heliod_first else ("bare", "heliod"):
        if which == "bare":
            restore_outbox(store)  # the bare loop sends what heliod sends
        bodies = prebuild(store, args.devices, args.batch_size) if which == "bare" else []
        before = load()
        vm = Victoria(root)
        try:
            if which == "heliod":
                got = run_heliod(store, vm, args.devices, args.batch_size, args.gzip)
            else:
                got = run_bare(bodies, vm)
        finally:
            vm.stop()
        del bodies
        results[which] = {**got, "load_before": before, "load_after": load()}
    heliod, bare = results["heliod"], results["bare"]
    assert heliod["points"] == bare["points"] == n, (heliod, bare, n)
    return {"heliod": heliod, "bare": bare, "ratio": heliod["points_per_s"] / bare["points_per_s"]}


def spread(values: list[float]) -> dict[str, float]:
    """Median, minimum and maximum."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--gzip", action="store_true", help="heliod compresses its bodies")
    parser.add_argument(
        "--formatted", action="store_true", help="no outbox: lines formatted at export time"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heliod-bench-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        n = build_store(
            root / "heliod.db", args.days, args.devices, args.batch_size, not args.formatted
        )
        print(json.dumps({"readings": n, "build_s": round(time.perf_counter() - t, 1)}), flush=True)
        store = Store.open(f"sqlite:///{root / 'heliod.db'}")
        rounds: list[dict[str, Any]] = []
        for round_ in range(args.rounds):
            result = round_once(store, root, args, n, heliod_first=round_ % 2 == 0)
            rounds.append(result)
            line = {
                "round": round_,
                "batch_size": args.batch_size,
                "gzip": args.gzip,
                "outbox": not args.formatted,
                **result,
            }
            line["ratio"] = round(result["ratio"], 3)
            print(json.dumps(line), flush=True)
        store.close()

    def of(which: str, key: str) -> list[float]:
        return [float(r[which][key]) for r in rounds]

    summary = {
        "rounds": len(rounds),
        "ratio": spread([float(r["ratio"]) for r in rounds]),
        "heliod_points_per_s": spread(of("heliod", "points_per_s")),
        "bare_points_per_s": spread(of("bare", "points_per_s")),
        "heliod_cpu_us_per_point": spread(of("heliod", "cpu_us_per_point")),
        "bare_cpu_us_per_point": spread(of("bare", "cpu_us_per_point")),
        "vm_cpu_us_per_point_heliod": spread(of("heliod", "vm_cpu_us_per_point")),
        "vm_cpu_us_per_point_bare": spread(of("bare", "vm_cpu_us_per_point")),
        "load": spread(of("heliod", "load_before") + of("bare", "load_before")),
        "heliod_rss_growth_mb": spread(
            [
                peak - before
                for peak, before in zip(
                    of("heliod", "rss_peak_mb"), of("heliod", "rss_before_mb"), strict=True
                )
            ]
        ),
    }
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
