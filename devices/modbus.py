"""Modbus TCP for every Modbus device kind: one connection per device, register decoding and encoding.

One `ModbusConnection` per device owns one pymodbus client. Requests go through an asyncio.Lock so a
poll and a control-loop write never interleave on the wire. Every error closes the connection (a late
answer must never be taken for the next request's), and the next connect waits out an exponential
backoff with jitter, capped by the device config. While backing off, requests fail at once instead
of sleeping: a dead device costs its poller nothing and never holds a slot.
"""

from __future__ import annotations

import asyncio
import random
import struct
from typing import TYPE_CHECKING, Literal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from controller.core.clock import Clock
from controller.core.logs import get_logger
from devices.base import DeviceError
from devices.errors import describe

if TYPE_CHECKING:
    from devices.config import ModbusDeviceConfig

log = get_logger("devices.modbus")

DataType = Literal["uint16", "int16", "uint32", "int32", "float32", "uint64", "int64", "float64"]
WordOrder = Literal["big", "little"]

# struct format (big-endian bytes) and register count per data type
_FORMATS: dict[str, tuple[str, int]] = {
    "uint16": (">H", 1),
    "int16": (">h", 1),
    "uint32": (">I", 2),
    "int32": (">i", 2),
    "float32": (">f", 2),
    "uint64": (">Q", 4),
    "int64": (">q", 4),
    "float64": (">d", 4),
}

BACKOFF_JITTER = 0.2  # fraction of the delay taken off at random, so a site's devices do not reconnect in step


def register_count(data_type: DataType) -> int:
    return _FORMATS[data_type][1]


def decode(regs: list[int], data_type: DataType, word_order: WordOrder = "big") -> int | float:
    """The value held in `regs` (exactly the type's register count); bytes are big-endian within a register."""
    fmt, count = _FORMATS[data_type]
    if len(regs) != count:
        raise ValueError(f"{data_type} needs {count} registers, got {len(regs)}")
    words = list(regs) if word_order == "big" else list(reversed(regs))
    raw = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in words)
    value: int | float = struct.unpack(fmt, raw)[0]
    return value


def encode(value: int | float, data_type: DataType, word_order: WordOrder = "big") -> list[int]:
    """Registers holding `value`; integers out of the type's range raise ValueError (no silent wrap)."""
    fmt, _ = _FORMATS[data_type]
    if fmt[-1] in "fd":
        raw = struct.pack(fmt, float(value))
    else:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{data_type} needs an integer, got {value!r}")
        try:
            raw = struct.pack(fmt, int(value))
        except struct.error as exc:
            raise ValueError(f"{value!r} does not fit {data_type}") from exc
    words = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
    return words if word_order == "big" else list(reversed(words))


def encode_int32(value: int) -> list[int]:
    """Two's-complement int32, high word first: how a negative (charge) setpoint goes on the wire."""
    return encode(value, "int32", "big")


def decode_string(regs: list[int]) -> str:
    """ASCII packed two characters per register, NUL/space padded."""
    raw = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in regs)
    return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()


def encode_string(text: str, registers: int) -> list[int]:
    raw = text.encode("ascii")[: registers * 2].ljust(registers * 2, b"\x00")
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


class ModbusConnection:
    """The one connection to one Modbus TCP device.

    `connection_id` goes up by one on every successful connect, so a driver can do its
    once-per-connection work (read the config block, write ramp rates) when it sees a new one.
    Counters (`requests`, `failures`, `connects`) feed the device's health.
    """

    def __init__(self, config: ModbusDeviceConfig, clock: Clock, *, rng: random.Random | None = None) -> None:
        self.host = config.host
        self.port = config.port
        self.unit_id = config.unit_id
        self.timeout_s = config.timeout_s
        self.backoff_initial_s = config.backoff_initial_s
        self.backoff_max_s = config.backoff_max_s
        self.name = config.name
        self._clock = clock
        self._rng = rng or random.Random()
        self._client: AsyncModbusTcpClient | None = None
        self.lock = asyncio.Lock()
        self.connection_id = 0
        self.connects = 0
        self.requests = 0
        self.failures = 0
        self._failed_connects = 0
        self._retry_at: float | None = None  # clock.monotonic() before which no connect is tried
        # A connect in progress. It outlives a poll abandoned at its slot's end: pymodbus alone spends
        # 0.1 s in every connect, so a link slower than the poll interval would otherwise never connect.
        self._connecting: asyncio.Future[AsyncModbusTcpClient] | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    def backoff_delay(self, attempt: int) -> float:
        """Delay before connect attempt `attempt + 1` after `attempt` failures in a row (capped, jittered)."""
        base = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** max(0, attempt - 1))
        return base * (1.0 - BACKOFF_JITTER * self._rng.random())

    async def _ensure_connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        if self._connecting is not None and self._connecting.done():
            # Finished while no poll was waiting: collect it (a failure has already set the backoff).
            finished, self._connecting = self._connecting, None
            if not finished.cancelled() and finished.exception() is None and finished.result().connected:
                return finished.result()
        if self._connecting is None:
            now = self._clock.monotonic()
            if self._retry_at is not None and now < self._retry_at:
                raise DeviceError(f"reconnect backoff: next attempt in {self._retry_at - now:.1f}s")
            self._drop_client()
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> AsyncModbusTcpClient:
        # Automatic reconnects and retries are off: backoff and retries are ours, on our clock.
        client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0,
                                      reconnect_delay=0, name=self.name)
        try:
            ok = await asyncio.wait_for(client.connect(), timeout=self.timeout_s + 1.0)
        except asyncio.CancelledError:
            client.close()
            raise
        except (TimeoutError, OSError, ModbusException) as exc:
            client.close()
            self._connect_failed(describe(exc))
            raise DeviceError(f"connect to {self.host}:{self.port} failed: {describe(exc)}") from exc
        if not ok or not client.connected:
            client.close()
            self._connect_failed("refused")
            raise DeviceError(f"connect to {self.host}:{self.port} failed: no answer (refused or timed out)")
        self._client = client
        self._failed_connects = 0
        self._retry_at = None
        self.connects += 1
        self.connection_id += 1
        log.info("modbus_connected", device=self.name, host=self.host, port=self.port, connection=self.connection_id)
        return client

    def _connect_failed(self, error: str) -> None:
        self._failed_connects += 1
        delay = self.backoff_delay(self._failed_connects)
        self._retry_at = self._clock.monotonic() + delay
        log.warning("modbus_connect_failed", device=self.name, host=self.host, port=self.port, error=error,
                    attempt=self._failed_connects, retry_in_s=round(delay, 3))

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _cancel_connect(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None

    def _request_failed(self, error: str) -> None:
        """A timeout or broken connection: close, and reconnect only after the backoff."""
        self.failures += 1
        self._drop_client()
        self._failed_connects += 1
        delay = self.backoff_delay(self._failed_connects)
        self._retry_at = self._clock.monotonic() + delay
        log.warning("modbus_request_failed", device=self.name, error=error, retry_in_s=round(delay, 3))

    async def _execute(self, what: str, call: str, address: int, *args: object, **kwargs: object) -> ModbusPDU:
        async with self.lock:
            client = await self._ensure_connected()
            self.requests += 1
            try:
                method = getattr(client, call)
                # pymodbus times the answer out itself (timeout_s); this outer bound only guards the
                # connection against a request that never returns at all.
                async with asyncio.timeout(self.timeout_s + 1.0):
                    response: ModbusPDU = await method(address, *args, device_id=self.unit_id, **kwargs)
            except asyncio.CancelledError:
                # Abandoned mid-request (slot overrun): the answer may still come; never let it meet
                # the next request on this socket.
                self._drop_client()
                raise
            except (TimeoutError, ModbusException, OSError) as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # pymodbus answers a cancellation with an exception of its own ("Request cancelled
                    # outside library"): the request was abandoned, as above, not failed.
                    self._drop_client()
                    raise asyncio.CancelledError from exc
                self._request_failed(f"{what}: {describe(exc)}")
                raise DeviceError(f"{what} at {address}: {describe(exc)}") from exc
            if response.isError():
                # An exception response is a well-formed answer: the link is fine, keep it.
                self.failures += 1
                code = getattr(response, "exception_code", 0)
                raise DeviceError(f"{what} at {address}: exception response code {code}")
            return response

    async def connect(self) -> int:
        """Connect if not connected (honouring the backoff); returns the connection id."""
        async with self.lock:
            await self._ensure_connected()
            return self.connection_id

    async def read_holding(self, address: int, count: int) -> list[int]:
        response = await self._execute("read", "read_holding_registers", address, count=count)
        regs = list(response.registers)
        if len(regs) != count:
            raise DeviceError(f"read at {address}: asked for {count} registers, got {len(regs)}")
        return regs

    async def write_registers(self, address: int, values: list[int]) -> None:
        await self._execute("write", "write_registers", address, values)

    async def write_register(self, address: int, value: int) -> None:
        await self._execute("write", "write_register", address, value)

    async def close(self) -> None:
        async with self.lock:
            self._cancel_connect()
            self._drop_client()
