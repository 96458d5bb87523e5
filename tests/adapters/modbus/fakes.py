"""Real pymodbus servers standing in for devices we cannot run: register images we control.

A `FakeServer` runs a pymodbus 3 server (TCP, RTU over TCP, or RTU on a serial port) in
its own thread and event loop. Each `FakeUnit` is one unit id's register image; tests
change its words, make it answer with an exception code, or stop answering, while the
server runs. Every request and response is recorded in a `RequestLog`, so the
read-only guarantee is checked on what actually arrived on the wire.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from tests.support import free_port

READ_CODES = frozenset({1, 2, 3, 4})
Values = Mapping[str, int | float | str]


class RequestLog:
    """Function codes of requests received and responses sent by fake servers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[int] = Counter()
        self.responses: Counter[int] = Counter()  # exception responses as their base code
        self.by_unit: Counter[int] = Counter()

    def trace_pdu(self, sending: bool, pdu: Any) -> Any:
        """pymodbus server hook: called with every decoded request and every response."""
        with self._lock:
            if sending:
                self.responses[pdu.function_code & 0x7F] += 1
            else:
                self.requests[pdu.function_code] += 1
                self.by_unit[pdu.dev_id] += 1
        return pdu

    def non_read_codes(self) -> dict[int, int]:
        """Codes other than FC 1-4 seen in either direction, with their counts."""
        with self._lock:
            seen = self.requests + self.responses
            return {code: n for code, n in seen.items() if code not in READ_CODES}

    def total(self) -> int:
        """Number of requests received."""
        with self._lock:
            return sum(self.requests.values())


class InFlight:
    """Counts requests being answered at once (shared by units to watch a whole gateway)."""

    def __init__(self) -> None:
        self.now = 0
        self.max = 0

    def enter(self) -> None:
        self.now += 1
        self.max = max(self.max, self.now)

    def leave(self) -> None:
        self.now -= 1


class FakeUnit:
    """One unit id: holding and input register images plus fault switches."""

    def __init__(
        self,
        holding: Mapping[int, int] | None = None,
        input: Mapping[int, int] | None = None,
        in_flight: InFlight | None = None,
    ) -> None:
        self.holding: dict[int, int] = dict(holding or {})
        self.input: dict[int, int] = dict(input or {})
        self.exception: int | None = None  # answer every request with this exception code
        self.delay_s = 0.0  # answer this late (a huge value: the device stops answering)
        self.silent_at: set[int] = set()  # requests starting at these addresses get no answer
        self.in_flight = in_flight or InFlight()
        self.reads = 0

    def set_words(self, address: int, words: Iterable[int], kind: str = "holding") -> None:
        """Overwrite registers from `address` on (they must exist in the served map)."""
        image = self.holding if kind == "holding" else self.input
        for i, word in enumerate(words):
            if address + i not in image:
                raise KeyError(f"{kind} register {address + i} is not served")
            image[address + i] = word

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: Any,
    ) -> ExcCodes | None:
        """pymodbus simulator hook: refresh the served words from the image, apply faults."""
        self.in_flight.enter()
        self.reads += 1
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if address in self.silent_at:
                await asyncio.sleep(1000)
            if self.exception is not None:
                return ExcCodes(self.exception)
            image = self.input if function_code == 4 else self.holding
            for i in range(count):
                registers[address - start_address + i] = image.get(address + i, 0)
            return None
        finally:
            self.in_flight.leave()

    def sim_device(self, unit_id: int) -> SimDevice:
        """The pymodbus simulator device serving this image (gaps answer illegal address)."""
        return SimDevice(
            id=unit_id,
            simdata=(
                [SimData(0, values=False, datatype=DataType.BITS)],
                [SimData(0, values=False, datatype=DataType.BITS)],
                _blocks(self.holding),
                _blocks(self.input),
            ),
            action=self.action,
        )


def _blocks(image: Mapping[int, int]) -> list[SimData]:
    if not image:
        return [SimData(0, datatype=DataType.INVALID)]
    blocks: list[SimData] = []
    run: list[int] = []
    start = prev = -2
    for address in sorted(image):
        if address != prev + 1 and run:
            blocks.append(SimData(start, values=run, datatype=DataType.REGISTERS))
            run = []
        if not run:
            start = address
        run.append(image[address])
        prev = address
    blocks.append(SimData(start, values=run, datatype=DataType.REGISTERS))
    return blocks


class FakeServer:
    """A pymodbus server on a free loopback port (or a serial pty) in a background thread."""

    def __init__(
        self,
        units: Mapping[int, FakeUnit],
        log: RequestLog,
        *,
        framer: str = "socket",
        serial_port: str | None = None,
        baudrate: int = 9600,
    ) -> None:
        self.units = dict(units)
        self.log = log
        self.framer = FramerType.RTU if framer == "rtu" else FramerType.SOCKET
        self.serial_port = serial_port
        self.baudrate = baudrate
        self.port = 0 if serial_port else free_port()
        self.connections = 0  # TCP connections accepted since start
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    def _trace_connect(self, connected: bool) -> None:
        if connected:
            self.connections += 1

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        devices = [unit.sim_device(uid) for uid, unit in self.units.items()]
        server: ModbusTcpServer | ModbusSerialServer
        if self.serial_port:
            server = ModbusSerialServer(
                devices,
                framer=self.framer,
                port=self.serial_port,
                baudrate=self.baudrate,
                trace_pdu=self.log.trace_pdu,
            )
        else:
            server = ModbusTcpServer(
                devices,
                framer=self.framer,
                address=("127.0.0.1", self.port),
                trace_pdu=self.log.trace_pdu,
                trace_connect=self._trace_connect,
            )
        await server.serve_forever(background=True)
        self._ready.set()
        await self._stop.wait()
        await server.shutdown()  # type: ignore[no-untyped-call]
        # Requests still held by a silent unit die with the server, as on a real reboot.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def start(self) -> FakeServer:
        """Start serving; returns once the port accepts connections."""
        self._ready.clear()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._main(),), daemon=True
        )
        self._thread.start()
        # Ready means listening: no probe connection, so `connections` counts only clients.
        if not self._ready.wait(10):
            raise RuntimeError("fake Modbus server did not start")
        return self

    def stop(self) -> None:
        """Stop serving and close every client connection (a device that goes away)."""
        if self._loop is None or self._thread is None:
            return
        stop = self._stop
        assert stop is not None
        self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


Serve = Callable[..., FakeServer]  # the `serve` fixture: start a server for one test
