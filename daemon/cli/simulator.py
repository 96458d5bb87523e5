"""A simulated SunSpec inverter for `heliod demo`: Modbus TCP on loopback, a day of sun.

The inverter serves the SunSpec marker at 40000, the common model (1), the three-phase
inverter model (103) and the end marker, like a real string inverter. Its AC power
follows the sun of the plant's site and season under a clear sky, with passing clouds;
its lifetime energy counter (WH, acc32, Wh) integrates that power on whatever clock it is
given, so an accelerated clock makes a day pass in minutes. This is the device side: floats
are fine here, the registers it serves are integers as on a real inverter.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from heliod.adapters.modbus.sunspec_models import COMMON, INVERTER_INT, SUNSPEC_TYPES, ModelLayout
from heliod.daemon.cli.sun import STC_W_M2, Plane, Site, equator_facing, plane_w_m2

BASE = 40000
SUNS = (0x5375, 0x6E53)  # "SunS"
END = (0xFFFF, 0)
CLOUD_SLOT = timedelta(minutes=20)
INTEGRATION_STEP_S = 60.0  # simulated seconds per integration step of the energy counter


@dataclass(frozen=True)
class SunCurve:
    """Clear-sky AC power of a plant at its site (daemon/cli/sun.py), with clouds drawn
    from a fixed seed: the array gives `peak_w` at 1000 W/m² on its plane, and the
    inverter clips there."""

    peak_w: float
    site: Site
    plane: Plane | None = None  # None: tilted 30° toward the equator
    seed: int = 2016
    cloud_chance: float = 0.25

    def clear_sky_w(self, when: datetime) -> float:
        """Power without clouds: the irradiance on the panels' plane, zero at night."""
        plane = self.plane or equator_facing(self.site)
        return min(self.peak_w, self.peak_w * plane_w_m2(self.site, plane, when) / STC_W_M2)

    def cloud_factor(self, when: datetime) -> float:
        """1 under a clear sky, down to 0.5 under a thick cloud; smooth between slots."""
        slot_s = CLOUD_SLOT.total_seconds()
        position = when.timestamp() / slot_s
        k = math.floor(position)
        frac = position - k
        return (1 - frac) * self._slot(k) + frac * self._slot(k + 1)

    def _slot(self, k: int) -> float:
        rng = random.Random(self.seed * 1_000_003 + k)
        if rng.random() < self.cloud_chance:
            return 1.0 - rng.uniform(0.1, 0.5)
        return rng.uniform(0.96, 1.0)

    def power_w(self, when: datetime) -> float:
        """AC power at `when`."""
        return self.clear_sky_w(when) * self.cloud_factor(when)


@dataclass(frozen=True)
class SteadyPower:
    """A constant power (tests and benchmarks: a known number of Wh per second)."""

    peak_w: float

    def power_w(self, when: datetime) -> float:
        """Always the peak."""
        return self.peak_w


class PowerCurve(Protocol):
    """What the inverter produces at each instant, and at most."""

    @property
    def peak_w(self) -> float: ...

    def power_w(self, when: datetime) -> float: ...


def power_scale(peak_w: float) -> int:
    """SunSpec W_SF for an i16 power register that must hold `peak_w` (≤ 32767 × 10^sf)."""
    sf = 0
    while peak_w / 10**sf > 32_000:
        sf += 1
    return sf


def _blank(layout: ModelLayout, model_id: int) -> list[int]:
    """A model's words with every point "not implemented" (SunSpec's sentinel values)."""
    length = max(p.offset + p.width for p in layout.points)
    words = [0] * length
    words[0], words[1] = model_id, length - 2
    for p in layout.points:
        sentinel = SUNSPEC_TYPES[p.type][2] if p.type in SUNSPEC_TYPES else 0
        _put(words, layout, p.name, sentinel or 0)
    return words


def _put(words: list[int], layout: ModelLayout, name: str, value: int) -> None:
    point = layout.point(name)
    raw = value & ((1 << (16 * point.width)) - 1)
    for i in range(point.width):
        words[point.offset + i] = (raw >> (16 * (point.width - 1 - i))) & 0xFFFF


def _text(words: list[int], layout: ModelLayout, name: str, text: str) -> None:
    point = layout.point(name)
    data = text.encode("ascii")[: 2 * point.width].ljust(2 * point.width, b"\0")
    for i in range(point.width):
        words[point.offset + i] = int.from_bytes(data[2 * i : 2 * i + 2], "big")


class SimulatedInverter:
    """Register image of a SunSpec three-phase inverter, refreshed from the clock on each read."""

    def __init__(
        self, curve: PowerCurve, clock: Callable[[], datetime], energy_wh: float = 12_345_678.0
    ) -> None:
        self.curve = curve
        self.clock = clock
        self.energy_wh = energy_wh
        self.power_w = 0.0
        self._at = clock()
        self._lock = threading.Lock()
        common = _blank(COMMON, 1)
        for name, text in (
            ("Mn", "heliod"),
            ("Md", "Demo 250K"),
            ("Vr", "1.0"),
            ("SN", "DEMO-0001"),
        ):
            _text(common, COMMON, name, text)
        _put(common, COMMON, "DA", 1)
        self._common = common
        self._inverter = _blank(INVERTER_INT, 103)
        self._w_sf = power_scale(curve.peak_w * 1.05)  # room for VA and DC power above AC
        self._a_sf = power_scale(curve.peak_w / 230) - 1  # tenths of amps while they fit
        for sf, value in (("A_SF", self._a_sf), ("V_SF", -1), ("Hz_SF", -2), ("PF_SF", -2)):
            _put(self._inverter, INVERTER_INT, sf, value)
        for sf in ("W_SF", "VA_SF", "DCW_SF"):
            _put(self._inverter, INVERTER_INT, sf, self._w_sf)
        for sf, value in (("WH_SF", 0), ("Tmp_SF", -1)):
            _put(self._inverter, INVERTER_INT, sf, value)

    def advance(self) -> None:
        """Integrate power from the last update to now (simulated time) into the counter."""
        with self._lock:
            now = self.clock()
            span = (now - self._at).total_seconds()
            if span <= 0:
                return
            steps = max(1, math.ceil(span / INTEGRATION_STEP_S))
            dt = span / steps
            for i in range(steps):
                mid = self._at + timedelta(seconds=dt * (i + 0.5))
                self.energy_wh += self.curve.power_w(mid) * dt / 3600
            self._at = now
            self.power_w = self.curve.power_w(now)

    def words(self) -> list[int]:
        """Holding registers from 40000: marker, model 1, model 103, end marker."""
        self.advance()
        w, m = self.power_w, self._inverter
        producing = w > 1
        amps = w / (3 * 230.0)
        unit_w, unit_a = 10.0**self._w_sf, 10.0**self._a_sf
        _put(m, INVERTER_INT, "W", round(w / unit_w))
        _put(m, INVERTER_INT, "VA", round(w * 1.01 / unit_w))
        _put(m, INVERTER_INT, "WH", int(self.energy_wh) & 0xFFFFFFFF)  # acc32 wraps
        _put(m, INVERTER_INT, "A", round(amps * 3 / unit_a))
        for phase in "ABC":
            _put(m, INVERTER_INT, f"Aph{phase}", round(amps / unit_a))
            _put(m, INVERTER_INT, f"PhVph{phase}", 2300 if producing else 0)
        _put(m, INVERTER_INT, "Hz", 5000)
        _put(m, INVERTER_INT, "PF", 99 if producing else 0)
        _put(m, INVERTER_INT, "DCW", round(w * 1.03 / unit_w))
        _put(m, INVERTER_INT, "TmpCab", round((25 + w / 10_000) * 10))
        _put(m, INVERTER_INT, "St", 4 if producing else 2)  # 4 MPPT, 2 sleeping
        return [*SUNS, *self._common, *m, *END]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class InverterServer:
    """A pymodbus TCP server for one simulated inverter (unit id 1) in its own thread."""

    def __init__(self, inverter: SimulatedInverter, host: str = "127.0.0.1", port: int = 0) -> None:
        self.inverter = inverter
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    async def _action(
        self, _fc: int, start: int, address: int, count: int, registers: list[int], _set: Any
    ) -> None:
        words = self.inverter.words()
        for i in range(count):
            offset = address + i - BASE
            registers[address - start + i] = words[offset] if 0 <= offset < len(words) else 0

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        size = len(self.inverter.words())
        device = SimDevice(
            id=1,
            simdata=[SimData(BASE, values=[0] * size, datatype=DataType.REGISTERS)],
            action=self._action,
        )
        server = ModbusTcpServer([device], address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        self._ready.set()
        await self._stop.wait()
        await server.shutdown()  # type: ignore[no-untyped-call]

    def start(self) -> InverterServer:
        """Serve in the background; returns once listening."""
        if self.port == 0:
            self.port = free_port(self.host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete,
            args=(self._main(),),
            name="demo-inverter",
            daemon=True,
        )
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"simulated inverter did not start: {self._error}")
        return self

    def stop(self) -> None:
        """Stop serving and close client connections."""
        if self._loop is None or self._thread is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
        self._loop = self._thread = None
