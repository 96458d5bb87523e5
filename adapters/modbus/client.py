"""Read-only Modbus connections, one per gateway or serial line, shared by its unit ids.

The pymodbus client is private to `Connection`; what the rest of heliod holds is a
`UnitReader`, which has read function codes only (1, 2, 3, 4): heliod never writes.
Many gateways accept a single client, so every unit id behind one endpoint shares one
connection and its requests are serialized by the connection's lock.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from heliod.adapters.errors import PermanentError, RetryableError
from heliod.adapters.modbus.settings import ModbusDeviceSettings

log = logging.getLogger(__name__)

READ_FUNCTION_CODES = frozenset({1, 2, 3, 4})
# Modbus exception codes a person must act on: the request itself is wrong for this device.
PERMANENT_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value"}
OTHER_EXCEPTIONS = {
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go: a TCP gateway (Modbus TCP or RTU framing) or a serial line."""

    transport: str
    host: str = ""
    port: int = 502
    serial_port: str = ""
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    @classmethod
    def of(cls, settings: ModbusDeviceSettings) -> Endpoint:
        """The endpoint a device's settings point at."""
        if settings.transport == "rtu":
            return cls(
                "rtu",
                serial_port=settings.serial_port,
                baudrate=settings.baudrate,
                parity=settings.parity,
                stopbits=settings.stopbits,
                bytesize=settings.bytesize,
            )
        return cls(settings.transport, host=settings.host, port=settings.port)

    @property
    def key(self) -> tuple[str, str, int]:
        """Identity of the physical link: one connection per key."""
        if self.transport == "rtu":
            return ("rtu", self.serial_port, 0)
        return ("tcp", self.host, self.port)

    def __str__(self) -> str:
        if self.transport == "rtu":
            return f"{self.serial_port}@{self.baudrate}"
        return f"{self.transport}://{self.host}:{self.port}"


def _new_client(endpoint: Endpoint, timeout_s: float) -> ModbusTcpClient | ModbusSerialClient:
    # retries=0: heliod retries itself, per device, and closes the link after a timeout.
    if endpoint.transport == "rtu":
        return ModbusSerialClient(
            endpoint.serial_port,
            framer=FramerType.RTU,
            baudrate=endpoint.baudrate,
            bytesize=endpoint.bytesize,
            parity=endpoint.parity,
            stopbits=endpoint.stopbits,
            timeout=timeout_s,
            retries=0,
        )
    framer = FramerType.RTU if endpoint.transport == "rtu-over-tcp" else FramerType.SOCKET
    return ModbusTcpClient(
        endpoint.host, port=endpoint.port, framer=framer, timeout=timeout_s, retries=0
    )


class Connection:
    """One link to an endpoint: lazy connect, reconnect with backoff, one request at a time."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        connect_delay_s: float = 0.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.connect_delay_s = connect_delay_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.__client: ModbusTcpClient | ModbusSerialClient | None = None
        self._backoff_s = 0.0
        self._next_connect_at = 0.0
        self._closed = False

    def read(
        self,
        function_code: int,
        unit_id: int,
        address: int,
        count: int,
        *,
        timeout_s: float,
        retries: int,
    ) -> list[int] | list[bool]:
        """Run one read request (FC 1-4), retrying timeouts and dropped links `retries` times."""
        if function_code not in READ_FUNCTION_CODES:
            raise PermanentError(
                f"function code {function_code} is not a read; heliod never writes"
            )
        with self._lock:
            last: RetryableError | None = None
            for _attempt in range(retries + 1):
                client = self._connected_client(timeout_s)
                try:
                    response = self._request(client, function_code, unit_id, address, count)
                except (ModbusException, OSError) as exc:
                    # A timeout may leave a late answer in flight: drop the link so it
                    # can never be taken for the answer to the next request.
                    self._drop()
                    last = RetryableError(f"{self.endpoint} unit {unit_id}: {exc}")
                    continue
                return self._values(response, function_code, unit_id, address, count)
            assert last is not None
            raise last

    def close(self, final: bool = False) -> None:
        """Close the link; a later read reconnects, unless `final`.

        `final` never waits for a read in flight: it marks the connection closed and cuts
        the socket under it, so the read fails at once and is not retried (a stop must not
        wait timeout × (retries + 1) for a silent device).
        """
        if final:
            self._closed = True
            self._interrupt()
            if not self._lock.acquire(blocking=False):
                return  # the reading thread drops the link when its read fails
        else:
            self._lock.acquire()
        try:
            self._drop()
        finally:
            self._lock.release()

    def _interrupt(self) -> None:
        """Wake a read blocked on this link, from another thread."""
        client = self.__client
        sock = getattr(client, "socket", None) if client is not None else None
        try:
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)  # select() returns, recv() gets EOF
            elif sock is not None and hasattr(sock, "cancel_read"):
                sock.cancel_read()  # pyserial on POSIX
        except OSError:
            pass  # already closed

    def _connected_client(self, timeout_s: float) -> ModbusTcpClient | ModbusSerialClient:
        if self._closed:
            raise RetryableError(f"{self.endpoint}: connection pool is closed")
        client = self.__client
        if client is None:
            now = self._monotonic()
            if now < self._next_connect_at:
                wait = self._next_connect_at - now
                raise RetryableError(f"{self.endpoint}: reconnecting in {wait:.1f}s (backoff)")
            client = _new_client(self.endpoint, timeout_s)
            if not client.connect():
                client.close()  # type: ignore[no-untyped-call]
                self._backoff_s = min(
                    self._backoff_max_s, max(self._backoff_initial_s, self._backoff_s * 2)
                )
                self._next_connect_at = now + self._backoff_s
                raise RetryableError(f"{self.endpoint}: cannot connect")
            self._backoff_s = 0.0
            self.__client = client
            if self.connect_delay_s:
                # Some devices drop requests sent right after the connect.
                time.sleep(self.connect_delay_s)
        # Per-device timeout: pymodbus reads it from comm_params at every receive.
        client.comm_params.timeout_connect = timeout_s
        return client

    @staticmethod
    def _request(
        client: ModbusTcpClient | ModbusSerialClient,
        function_code: int,
        unit_id: int,
        address: int,
        count: int,
    ) -> Any:
        if function_code == 3:
            return client.read_holding_registers(address, count=count, device_id=unit_id)
        if function_code == 4:
            return client.read_input_registers(address, count=count, device_id=unit_id)
        if function_code == 1:
            return client.read_coils(address, count=count, device_id=unit_id)
        return client.read_discrete_inputs(address, count=count, device_id=unit_id)

    def _values(
        self, response: Any, function_code: int, unit_id: int, address: int, count: int
    ) -> list[int] | list[bool]:
        if response.isError():
            where = self._where(function_code, unit_id, address, count)
            code = int(getattr(response, "exception_code", 0))
            if code in PERMANENT_EXCEPTIONS:
                raise PermanentError(f"{where}: exception {code} ({PERMANENT_EXCEPTIONS[code]})")
            name = OTHER_EXCEPTIONS.get(code, "unknown exception")
            raise RetryableError(f"{where}: exception {code} ({name})")
        if function_code in (3, 4):
            values: list[int] | list[bool] = response.registers  # a fresh list per answer
        else:
            values = list(response.bits)[:count]
        if len(values) != count:
            self._drop()
            where = self._where(function_code, unit_id, address, count)
            raise RetryableError(f"{where}: answer has {len(values)} values")
        return values

    def _where(self, function_code: int, unit_id: int, address: int, count: int) -> str:
        # Only for errors: formatted at every read, it was a third of this layer's cost.
        return f"{self.endpoint} unit {unit_id} FC{function_code} @{address}+{count}"

    def _drop(self) -> None:
        if self.__client is not None:
            self.__client.close()  # type: ignore[no-untyped-call]
            self.__client = None


class UnitReader:
    """What a device holds: read requests to one unit id through a shared connection."""

    __slots__ = ("_connection", "retries", "timeout_s", "unit_id")

    def __init__(
        self, connection: Connection, unit_id: int, timeout_s: float, retries: int
    ) -> None:
        self._connection = connection
        self.unit_id = unit_id
        self.timeout_s = timeout_s
        self.retries = retries

    def read_holding_registers(self, address: int, count: int) -> list[int]:
        """FC 3."""
        return self._read(3, address, count)  # type: ignore[return-value]

    def read_input_registers(self, address: int, count: int) -> list[int]:
        """FC 4."""
        return self._read(4, address, count)  # type: ignore[return-value]

    def read_coils(self, address: int, count: int) -> list[bool]:
        """FC 1."""
        return self._read(1, address, count)  # type: ignore[return-value]

    def read_discrete_inputs(self, address: int, count: int) -> list[bool]:
        """FC 2."""
        return self._read(2, address, count)  # type: ignore[return-value]

    def read_registers(self, kind: str, address: int, count: int) -> list[int]:
        """FC 3 for "holding", FC 4 for "input"."""
        return self._read(3 if kind == "holding" else 4, address, count)  # type: ignore[return-value]

    def _read(self, function_code: int, address: int, count: int) -> list[int] | list[bool]:
        return self._connection.read(
            function_code,
            self.unit_id,
            address,
            count,
            timeout_s=self.timeout_s,
            retries=self.retries,
        )


class ConnectionPool:
    """Connections by endpoint, so unit ids behind one gateway share its single connection."""

    def __init__(self, *, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0) -> None:
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._lock = threading.Lock()
        self._connections: dict[tuple[str, str, int], Connection] = {}

    def connection(self, endpoint: Endpoint, connect_delay_s: float = 0.0) -> Connection:
        """The shared connection to `endpoint`, created on first use."""
        with self._lock:
            conn = self._connections.get(endpoint.key)
            if conn is None:
                conn = Connection(
                    endpoint,
                    connect_delay_s=connect_delay_s,
                    backoff_initial_s=self._backoff_initial_s,
                    backoff_max_s=self._backoff_max_s,
                )
                self._connections[endpoint.key] = conn
            elif conn.endpoint.transport != endpoint.transport:
                raise PermanentError(
                    f"{endpoint}: this endpoint is already used with {conn.endpoint.transport} "
                    "framing; one TCP endpoint speaks either Modbus TCP or RTU over TCP"
                )
            elif conn.endpoint != endpoint:
                raise PermanentError(
                    f"{endpoint}: devices on one serial line must share baudrate, parity, "
                    f"stopbits and bytesize (already {conn.endpoint})"
                )
            conn.connect_delay_s = max(conn.connect_delay_s, connect_delay_s)
            return conn

    def reader(self, settings: ModbusDeviceSettings, connect_delay_s: float = 0.0) -> UnitReader:
        """A read-only handle on the device's unit id."""
        conn = self.connection(Endpoint.of(settings), connect_delay_s)
        return UnitReader(conn, settings.unit_id, settings.timeout_s, settings.retries)

    def connection_key(self, settings: ModbusDeviceSettings) -> tuple[str, str, int]:
        """Key of the link a device uses (devices with equal keys are serialized)."""
        return Endpoint.of(settings).key

    def close(self) -> None:
        """Close every connection for good, without waiting for reads in flight."""
        with self._lock:
            connections = list(self._connections.values())
        for conn in connections:
            conn.close(final=True)
