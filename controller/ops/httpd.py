"""A minimal asyncio HTTP/1.1 endpoint for the metrics scrape and the local admin API.

Runs on the daemon's own event loop (so handlers read runtime state without locks), one request per
connection. Request parsing is h11's (the HTTP/1.1 state machine httpx uses), bounded: the request
line and headers within `MAX_HEAD_BYTES`, a body within `MAX_BODY_BYTES` (checked against
Content-Length before reading and again while reading), the whole request within `READ_TIMEOUT_S`,
and at most `MAX_CONNECTIONS` connections at once (more are answered 503 and closed at once, so idle
connections cannot exhaust the daemon's file descriptors). Not a general web server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h11

from controller.core.logs import get_logger

log = get_logger("ops.httpd")

MAX_BODY_BYTES = 512 * 1024  # a site file is a few kB (at most 256 kB); refuse anything absurd
MAX_HEAD_BYTES = 16 * 1024
MAX_CONNECTIONS = 32
READ_TIMEOUT_S = 10.0
READ_CHUNK = 16 * 1024
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity", 500: "Internal Server Error",
           503: "Service Unavailable", 505: "HTTP Version Not Supported"}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> HttpResponse:
        return cls(status, json.dumps(data, default=str).encode(), "application/json")


HttpHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]
# Listening endpoints by port (their counters: active, refused, bad_requests), for operators and tests.
LISTENING: dict[int, HttpEndpoint] = {}


class HttpEndpoint:
    def __init__(self, handler: HttpHandler, host: str, port: int) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self.listening = asyncio.Event()
        self.active = 0
        self.refused = 0  # connections turned away at the cap
        self.bad_requests = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        LISTENING[self.port] = self
        self.listening.set()

    async def close(self) -> None:
        self.listening.clear()
        if LISTENING.get(self.port) is self:
            del LISTENING[self.port]
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= MAX_CONNECTIONS:
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                log.warning("http_connection_refused", port=self.port, active=self.active, refused=self.refused)
            with contextlib.suppress(Exception):
                writer.write(_head(HttpResponse(503, b"too many connections\n")) + b"too many connections\n")
            writer.close()
            return
        self.active += 1
        try:
            await self._serve_one(reader, writer)
        finally:
            self.active -= 1

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT_S)
            if isinstance(request, HttpResponse):
                self.bad_requests += 1
                response = request
            else:
                try:
                    response = await self._handler(request)
                except Exception as exc:
                    log.error("http_handler_failed", path=request.path, error=repr(exc), exc_info=exc)
                    response = HttpResponse(500, b"internal error\n")
            writer.write(_head(response) + response.body)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _head(response: HttpResponse) -> bytes:
    head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}",
            f"Content-Type: {response.content_type}", f"Content-Length: {len(response.body)}",
            "Connection: close", *(f"{k}: {v}" for k, v in response.headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def _bad(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, (" ".join(message.split())[:200] + "\n").encode("utf-8", "replace"))


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | HttpResponse:
    """One request, parsed by h11 within the bounds; a malformed one is a 4xx answer, never an exception."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    request: h11.Request | None = None
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            return _bad(exc.error_status_hint, f"bad request: {exc}")
        if event is h11.NEED_DATA:
            chunk = await reader.read(READ_CHUNK)
            if not chunk:
                raise ConnectionError("closed before the request was complete")
            try:
                conn.receive_data(chunk)
            except h11.RemoteProtocolError as exc:
                return _bad(exc.error_status_hint, f"bad request: {exc}")
            continue
        if isinstance(event, h11.Request):
            if event.http_version not in (b"1.0", b"1.1"):  # h11 reads any N.N; we speak 1.x only
                return _bad(505, f"HTTP/{event.http_version.decode('latin-1')} is not supported")
            request = event
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            length = headers.get("content-length")
            if length is not None and int(length) > MAX_BODY_BYTES:
                return _bad(413, "body too large")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                return _bad(413, "body too large")
        elif isinstance(event, h11.EndOfMessage):
            break
        elif isinstance(event, h11.ConnectionClosed):
            raise ConnectionError("closed before the request was complete")
    assert request is not None
    target = request.target.decode("latin-1")
    return HttpRequest(request.method.decode("latin-1").upper(), target.split("?", 1)[0],
                       {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}, bytes(body))
