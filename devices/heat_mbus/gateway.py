"""One TCP connection per transparent M-Bus-to-TCP gateway, shared by every meter behind it.

The bus is half-duplex and slow (2400 baud): meters are asked one after another under a lock. The
input is flushed before each request and the answering address is checked, so a late answer is
never taken for the next meter's. A meter that does not answer gets a link reset (SND_NKE) and one
more REQ_UD2: battery meters sleep between readings. The connection opens lazily and is dropped
after any socket error; the next request reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from controller.core.logs import get_logger
from devices.base import DeviceError
from devices.errors import describe
from devices.heat_mbus.records import ACK, FCB, LONG_START, REQ_UD2, SND_NKE, STOP, long_frame_size, short_frame

log = get_logger("devices.heat_mbus")


class MbusTimeout(DeviceError):
    """No (valid) answer from the addressed meter in time."""


class _Receiver(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.lost: Exception | None = None
        self.closed = False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self.arrived.set()


class MbusGateway:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.counters: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._transport: asyncio.Transport | None = None
        self._rx: _Receiver | None = None
        self._fcb: dict[int, int] = {}

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    async def _ensure(self, timeout_s: float) -> tuple[asyncio.Transport, _Receiver]:
        if self._transport is not None and self._rx is not None and not self._rx.closed:
            return self._transport, self._rx
        loop = asyncio.get_running_loop()
        try:
            transport, rx = await asyncio.wait_for(
                loop.create_connection(_Receiver, self.host, self.port), timeout_s)
        except (OSError, TimeoutError) as exc:
            self._count("connect_failures")
            raise DeviceError(f"gateway {self.name}: connect failed: {describe(exc)}") from exc
        self._transport, self._rx = transport, rx
        self._fcb.clear()
        log.info("mbus_gateway_connected", gateway=self.name)
        return transport, rx

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport, self._rx = None, None

    async def read_meter(self, address: int, timeout_s: float) -> bytes:
        """The RSP_UD of the meter at primary `address` (raw bytes, checksum verified)."""
        async with self._lock:
            try:
                try:
                    return await self._req_ud2(address, timeout_s)
                except MbusTimeout:
                    self._count("wake_ups")
                    log.info("mbus_wake_up", gateway=self.name, address=address)
                    # Some meters wake without acknowledging the reset: the retry tells.
                    with contextlib.suppress(MbusTimeout):
                        await self._snd_nke(address, timeout_s)
                    return await self._req_ud2(address, timeout_s)
            except DeviceError:
                self.close()  # a late answer must die with the connection
                raise

    async def _snd_nke(self, address: int, timeout_s: float) -> None:
        transport, rx = await self._ensure(timeout_s)
        rx.buffer.clear()
        transport.write(short_frame(SND_NKE, address))
        self._fcb[address] = FCB  # after a link reset the next request starts with FCB set
        deadline = time.monotonic() + timeout_s
        while True:
            frame = await self._next_frame(rx, deadline)
            if frame == bytes([ACK]):
                return

    async def _req_ud2(self, address: int, timeout_s: float) -> bytes:
        transport, rx = await self._ensure(timeout_s)
        rx.buffer.clear()  # whatever is left is a late answer to someone else
        fcb = self._fcb.get(address, FCB)
        self._fcb[address] = fcb ^ FCB
        transport.write(short_frame(REQ_UD2 | fcb, address))
        deadline = time.monotonic() + timeout_s
        while True:
            frame = await self._next_frame(rx, deadline)
            if len(frame) == 1:
                self._count("stray_acks")
                continue
            if frame[5] != address:
                self._count("foreign_answers")
                log.warning("mbus_foreign_answer", gateway=self.name, asked=address, answered=frame[5])
                continue
            return frame

    async def _next_frame(self, rx: _Receiver, deadline: float) -> bytes:
        """The next whole frame on the wire: a single ACK or a checksummed long frame. Noise is skipped."""
        while True:
            buf = rx.buffer
            while buf and buf[0] not in (ACK, LONG_START):
                del buf[0]
                self._count("noise_bytes")
            if buf and buf[0] == ACK:
                del buf[0]
                return bytes([ACK])
            size = None
            if buf:
                try:
                    size = long_frame_size(bytes(buf[:4]))
                except ValueError:
                    del buf[0]  # not a frame start after all
                    self._count("noise_bytes")
                    continue
            if size is not None and len(buf) >= size:
                frame = bytes(buf[:size])
                del buf[:size]
                if frame[-1] != STOP or sum(frame[4:-2]) & 0xFF != frame[-2]:
                    self._count("checksum_errors")
                    log.warning("mbus_checksum_error", gateway=self.name, frame=frame.hex())
                    raise DeviceError(f"gateway {self.name}: frame checksum or stop byte wrong")
                return frame
            if rx.closed:
                self._count("disconnects")
                raise DeviceError(f"gateway {self.name}: connection lost"
                                  + (f" ({describe(rx.lost)})" if isinstance(rx.lost, BaseException) else ""))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._count("timeouts")
                raise MbusTimeout(f"gateway {self.name}: no answer in time")
            rx.arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await rx.arrived.wait()
            except TimeoutError:
                continue

