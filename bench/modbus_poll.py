"""Benchmark: heliod's Modbus poller against a bare pymodbus read loop, same devices, same run.

    .venv/bin/python bench/modbus_poll.py [--devices 100] [--seconds 20] [--interval 1]
    .venv/bin/python bench/modbus_poll.py --devices 10 --seconds 4 --warmup 1 --max-ratio 3
    .venv/bin/python bench/modbus_poll.py --devices 40 --delay-ms 30 --rounds 1

A child process serves N simulated SunSpec inverters (model 103), one pymodbus TCP
server each on loopback, so the servers' CPU is not counted. This process then runs:

1. bare: one thread, one pymodbus client per device, every interval read the same 38
   registers heliod reads, nothing decoded;
2. heliod: the Poller (APScheduler, shared connections, SunSpec decoding into exact
   Decimals, Reading objects, batches handed to a sink every second); with --metrics also
   the daemon's Prometheus observer of every poll.

For each it prints the process CPU time per poll (user + system, all threads) and the
latency from the poll's scheduled time to the value in hand (p50/p95/max), measured
after a warm-up. Figures are recorded in docs/performance.md ("Modbus polling").
With --delay-ms each device answers that late (an inverter on a real network answers in
tens of milliseconds), to see that polls keep to their interval (skipped polls, latency).
With --max-ratio R the exit status is 1 when the median ratio heliod / bare exceeds R (the
test script runs a short round this way, to catch a regression as large as a few times).
The simulated devices come from tests/adapters/modbus (needs the `test` extra: pysunspec2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL_ADDRESS = 40070  # model 103 after "SunS" and the 68-register common model
READ_COUNT = 38  # what heliod reads of model 103: header up to Tmp_SF


def serve(count: int, delay_s: float = 0.0) -> None:
    """Child process: serve `count` inverters, print their ports as JSON, run until stdin closes."""
    from pymodbus.server import ModbusTcpServer  # noqa: PLC0415 - child only

    sys.path.insert(0, str(ROOT))
    from tests.adapters.modbus.fakes import FakeUnit  # noqa: PLC0415
    from tests.adapters.modbus.sunspec_image import COMMON, sunspec_image  # noqa: PLC0415
    from tests.support import free_port  # noqa: PLC0415

    values = {"W": 2500, "W_SF": 0, "WH": 123_456_789, "WH_SF": 0, "Hz": 5000, "Hz_SF": -2}
    image = sunspec_image([COMMON, (103, values)])

    async def main() -> None:
        ports = []
        for _ in range(count):
            port = free_port()
            unit = FakeUnit(holding=image)
            unit.delay_s = delay_s  # each answer this late (a device on a real network)
            server = ModbusTcpServer([unit.sim_device(1)], address=("127.0.0.1", port))
            await server.serve_forever(background=True)
            ports.append(port)
        print(json.dumps(ports), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


def percentiles(values: list[float]) -> str:
    """p50/p95/max in milliseconds."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms, max {ordered[-1] * 1e3:.2f} ms"


def bare_loop(ports: list[int], seconds: float, interval: float, warmup: float) -> dict[str, float]:
    """Sequential pymodbus reads: the cheapest way to poll these devices every interval."""
    from pymodbus.client import ModbusTcpClient  # noqa: PLC0415

    clients = [ModbusTcpClient("127.0.0.1", port=p, timeout=2, retries=0) for p in ports]
    for c in clients:
        c.connect()  # type: ignore[no-untyped-call]
    start = time.monotonic()
    polls = 0
    latencies: list[float] = []
    requests: list[float] = []
    cpu0: float | None = None
    counted_from = 0
    tick = 0
    while True:
        scheduled = start + tick * interval
        if scheduled - start >= seconds:
            break
        time.sleep(max(0.0, scheduled - time.monotonic()))
        if cpu0 is None and scheduled - start >= warmup:
            cpu0, counted_from = time.process_time(), tick
        for c in clients:
            t = time.monotonic()
            rr = c.read_holding_registers(MODEL_ADDRESS, count=READ_COUNT, device_id=1)
            done = time.monotonic()
            assert not rr.isError()
            assert len(rr.registers) == READ_COUNT
            if cpu0 is not None:
                polls += 1
                requests.append(done - t)
                latencies.append(done - scheduled)
        tick += 1
    assert cpu0 is not None, "the run is shorter than its warm-up"
    cpu = time.process_time() - cpu0
    for c in clients:
        c.close()  # type: ignore[no-untyped-call]
    print(
        f"bare   : {polls} polls, CPU {cpu / polls * 1e6:.0f} µs/poll; request {percentiles(requests)}"
    )
    print(f"         schedule→value {percentiles(latencies)}")
    return {"cpu_us": cpu / polls * 1e6, "polls": polls, "ticks": tick - counted_from}


def heliod_poller(
    ports: list[int],
    seconds: float,
    interval: float,
    warmup: float,
    workers: int,
    metrics: bool = False,
) -> dict[str, float]:
    """The same devices through heliod's Poller (with the daemon's observer if `metrics`)."""
    from heliod.adapters.modbus import ModbusDeviceSettings  # noqa: PLC0415
    from heliod.adapters.modbus.poller import Poller  # noqa: PLC0415
    from heliod.rewards.readings import Reading  # noqa: PLC0415

    t0: list[datetime] = []

    def clock() -> datetime:
        now = datetime.now(UTC)
        if not t0:
            t0.append(now)  # Poller's first call: the first poll of every device is due now
        return now

    lock = threading.Lock()
    readings: list[Reading] = []

    def sink(batch: list[Reading]) -> None:
        with lock:
            readings.extend(batch)

    devices = [
        ModbusDeviceSettings(id=f"inv{i}", host="127.0.0.1", port=p, poll_interval_s=interval)
        for i, p in enumerate(ports)
    ]
    options: dict[str, Any] = {}
    if metrics:
        from heliod.daemon.boot.metrics import Metrics  # noqa: PLC0415

        options["on_poll"] = Metrics().polled
    poller = Poller(devices, sink, clock=clock, flush_interval_s=1.0, workers=workers, **options)
    poller.start()
    # Measure whole ticks: from mid-tick k0 to mid-tick k1, when no poll is in flight,
    # and count the polls scheduled at ticks k0+1 .. k1.
    k0, k1 = int(warmup / interval), int(seconds / interval)
    start = t0[0].timestamp()

    def sleep_until(tick: int) -> None:
        time.sleep(max(0.0, start + (tick + 0.5) * interval - time.time()))

    sleep_until(k0)
    cpu0 = time.process_time()
    sleep_until(k1)
    cpu = time.process_time() - cpu0
    poller.stop()
    window, latencies = [], []
    for r in readings:
        since = r.ts.timestamp() - start  # every device's polls are due at start + k × interval
        tick = int(since / interval)
        if k0 < tick <= k1:
            window.append(r)
            latencies.append(since - tick * interval)
    assert all(r.energy_wh is not None for r in window)
    failures = sum(h.failures for h in poller.health().values())
    skipped = sum(h.skipped for h in poller.health().values())
    print(f"heliod : {len(window)} polls ({workers} shared workers), CPU {cpu / len(window) * 1e6:.0f} µs/poll; "
          f"failures {failures}, skipped {skipped}")  # fmt: skip
    print(f"         schedule→value {percentiles(latencies)}")
    return {"cpu_us": cpu / len(window) * 1e6, "polls": len(window)}


def main() -> None:
    """Start the device process, run both pollers, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=1, help="Poller's shared workers at start")
    parser.add_argument("--rounds", type=int, default=3, help="alternate bare/heliod runs")
    parser.add_argument("--metrics", action="store_true", help="the daemon's poll observer too")
    parser.add_argument("--max-ratio", type=float, help="exit 1 above this median ratio")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="each device answers this late")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.delay_ms / 1000)
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.devices), "--delay-ms", str(args.delay_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        ports = json.loads(child.stdout.readline())
        print(f"{len(ports)} simulated inverters on loopback, interval {args.interval}s, "
              f"{args.seconds}s per run ({args.warmup}s warm-up)")  # fmt: skip
        ratios = []
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}")
            bare = bare_loop(ports, args.seconds, args.interval, args.warmup)
            ours = heliod_poller(
                ports, args.seconds, args.interval, args.warmup, args.workers, args.metrics
            )
            ratios.append(ours["cpu_us"] / bare["cpu_us"])
            print(f"         heliod / bare CPU per poll = {ratios[-1]:.2f}")
        median = statistics.median(ratios)
        print(f"ratio  : median {median:.2f} over {len(ratios)} rounds "
              f"(each {', '.join(f'{r:.2f}' for r in ratios)}); target ≤ 1.5 with 100 devices")  # fmt: skip
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(10)
    if args.max_ratio is not None and median > args.max_ratio:
        print(f"FAIL   : heliod takes {median:.2f}× the bare loop's CPU per poll "
              f"(limit {args.max_ratio:g}×)")  # fmt: skip
        sys.exit(1)


if __name__ == "__main__":
    main()
