"""EMOP over TCP: one request and one answer per connection, then the socket closes.

Policy from spec/devices.md: per attempt a connect+read timeout (real seconds: it bounds I/O), at most
one retry, one request in flight per meter, a minimum gap between connections to the same meter
(on the injected clock), a refused or silently closed connection is the meter being busy (back off
2-5 s once), and a site-wide limit of open sockets per link, shared by every meter on that link.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime

from controller.core.clock import Clock
from controller.core.logs import get_logger
from devices.emlite.codec import (
    EmopError,
    Frame,
    FrameError,
    Message,
    Nak,
    NakCode,
    NakError,
    ObjectAnswer,
    ObjectReadRequest,
    ObjectValue,
    ProfileLogAnswer,
    ProfileLogRequest,
    decode,
    decode_value,
    encode,
    frame_size,
)

log = get_logger("devices.emlite")

# NAKs that another attempt cannot fix: the meter understood us and said no.
FINAL_NAKS = frozenset({NakCode.UNKNOWN_OBJECT, NakCode.SECURITY_NOT_GRANTED, NakCode.FORMAT_ERROR,
                        NakCode.MAX_PAYLOAD_EXCEEDED})


class BusyError(EmopError):
    """The meter refused the connection or closed it without a byte: it is still serving someone."""


class UnreachableError(EmopError):
    """Connect or read timed out, or the socket failed: nothing to be learnt from the meter this time."""


class _Answer(asyncio.Protocol):
    """One answer frame: `done` once `length + 1` bytes are in (answers over 4G arrive split), or with the
    error that ended the connection before that."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.buf += data
        try:
            need = frame_size(self.buf)
        except FrameError as exc:
            self.done.set_exception(exc)
            return
        if need is not None and len(self.buf) >= need:
            self.done.set_result(None)

    def eof_received(self) -> None:
        self._ended(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def _ended(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if self.buf and exc is not None:
            self.done.set_exception(exc)
        elif self.buf:
            need = frame_size(self.buf)
            self.done.set_exception(
                FrameError("truncated", f"connection closed after {len(self.buf)} of {need or '?'} bytes"))
        elif isinstance(exc, ConnectionResetError):
            # A meter busy with someone else resets the connection without reading our request.
            self.done.set_exception(BusyError("reset without answer"))
        elif exc is None:
            self.done.set_exception(BusyError("closed without answer"))
        else:
            self.done.set_exception(exc)


class EmopClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        clock: Clock,
        link: asyncio.Semaphore,
        meter: str,
        timeout_s: float = 10.0,
        min_gap_s: float = 2.0,
        busy_backoff_s: tuple[float, float] = (2.0, 5.0),
        client_address: int = 1,
        counters: dict[str, int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.clock = clock
        self.link = link
        self.meter = meter
        self.timeout_s = timeout_s
        self.min_gap_s = min_gap_s
        self.busy_backoff_s = busy_backoff_s
        self.client_address = client_address
        self.counters = counters if counters is not None else {}
        self.rng = rng or random.Random()
        self._lock = asyncio.Lock()
        # True while queued for a link slot: a poll abandoned then was the link's fault, not the meter's.
        self.waiting_for_link = False
        self._last_close: float | None = None
        self._sequence = 0

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    async def read_value(self, object_id: int) -> ObjectValue:
        payload = await self.read_object(object_id)
        try:
            return decode_value(object_id, payload)
        except FrameError as exc:
            self._count(f"frame_{exc.reason}")
            log.warning("emop_bad_value", meter=self.meter, object_id=f"{object_id:06X}", error=str(exc))
            raise

    async def read_object(self, object_id: int) -> bytes:
        answer = await self.request(ObjectReadRequest(object_id))
        if not isinstance(answer, ObjectAnswer) or answer.object_id != object_id:
            self._count("frame_mismatch")
            raise FrameError("mismatch", f"asked for object {object_id:06X}, got {answer!r:.80}")
        return answer.payload

    async def read_profile(self, log_number: int, start: datetime) -> ProfileLogAnswer:
        answer = await self.request(ProfileLogRequest(log_number, start))
        if not isinstance(answer, ProfileLogAnswer) or answer.log != log_number:
            self._count("frame_mismatch")
            raise FrameError("mismatch", f"asked for profile log {log_number}, got {answer!r:.80}")
        return answer

    async def request(self, message: Message) -> Message:
        """One request with at most one retry; one request in flight per meter."""
        async with self._lock:
            try:
                return await self._attempt(message)
            except NakError as exc:
                if exc.code in FINAL_NAKS:
                    raise
                first: EmopError = exc
            except BusyError as exc:
                first = exc
                await self.clock.sleep(self.rng.uniform(*self.busy_backoff_s))
            except EmopError as exc:
                first = exc
            log.info("emop_retry", meter=self.meter, error=str(first))
            self._count("retries")
            return await self._attempt(message)

    async def _attempt(self, message: Message) -> Message:
        self.waiting_for_link = False
        if self._last_close is not None:
            wait = self._last_close + self.min_gap_s - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)
        self._sequence ^= 1
        request = Frame(message, src_address=self.client_address, sequence=self._sequence)
        queued = self.clock.monotonic()
        self.waiting_for_link = True
        try:
            async with self.link:
                self.waiting_for_link = False
                # Time spent queueing for the link (ms, cumulative): the cost of the site-wide socket limit.
                waited_ms = round((self.clock.monotonic() - queued) * 1000)
                self.counters["link_wait_ms"] = self.counters.get("link_wait_ms", 0) + waited_ms
                try:
                    async with asyncio.timeout(self.timeout_s):
                        raw = await self._round_trip(encode(request))
                finally:
                    self._last_close = self.clock.monotonic()
        except TimeoutError as exc:
            self._count("timeouts")
            log.warning("emop_timeout", meter=self.meter, timeout_s=self.timeout_s)
            raise UnreachableError(f"no answer within {self.timeout_s}s") from exc
        except ConnectionRefusedError as exc:
            self._count("busy")
            log.info("emop_busy", meter=self.meter, error="refused")
            raise BusyError("connection refused") from exc
        except BusyError:
            self._count("busy")
            log.info("emop_busy", meter=self.meter, error="closed without answer")
            raise
        except FrameError as exc:
            self._count(f"frame_{exc.reason}")
            log.warning("emop_bad_frame", meter=self.meter, reason=exc.reason, error=str(exc))
            raise
        except OSError as exc:
            self._count("socket_errors")
            log.warning("emop_socket_error", meter=self.meter, error=repr(exc))
            raise UnreachableError(repr(exc)) from exc
        try:
            answer = decode(raw)
        except FrameError as exc:
            self._count(f"frame_{exc.reason}")
            log.warning("emop_bad_frame", meter=self.meter, reason=exc.reason, error=str(exc), frame=raw.hex())
            raise
        if answer.sequence != request.sequence or answer.dest_address != self.client_address:
            self._count("frame_mismatch")
            log.warning("emop_foreign_answer", meter=self.meter, frame=raw.hex())
            raise FrameError("mismatch", "answer does not echo our sequence bit and address")
        if isinstance(answer.message, Nak):
            self._count("naks")
            log.warning("emop_nak", meter=self.meter, code=answer.message.code, request=type(message).__name__)
            raise NakError(answer.message.code)
        return answer.message

    async def _round_trip(self, raw: bytes) -> bytes:
        # A protocol, not streams: a reader, a writer, drain and wait_closed cost several event-loop steps
        # per request, and a 54-home site makes about three requests a second.
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        transport, answer = await loop.create_connection(lambda: _Answer(done), self.host, self.port)
        try:
            transport.write(raw)
            await done
        finally:
            transport.close()
        need = frame_size(answer.buf)
        assert need is not None  # done only once the length byte is in
        if len(answer.buf) > need:
            raise FrameError("oversized", f"{len(answer.buf)} bytes, length byte says {need}")
        return answer.buf
