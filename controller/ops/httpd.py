"""A minimal asyncio HTTP/1.1 endpoint for the metrics scrape and the local admin API.

Runs on the daemon's own event loop (so handlers read runtime state without locks), one request per
connection, bodies by Content-Length only. Not a general web server: loopback clients only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from controller.core.logs import get_logger

log = get_logger("ops.httpd")

MAX_BODY_BYTES = 4 * 1024 * 1024  # a site file is a few kB; refuse anything absurd
READ_TIMEOUT_S = 10.0
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity", 500: "Internal Server Error",
           503: "Service Unavailable"}


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


class HttpEndpoint:
    def __init__(self, handler: HttpHandler, host: str, port: int) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.listening.set()

    async def close(self) -> None:
        self.listening.clear()
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
        try:
            request = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT_S)
            if isinstance(request, HttpResponse):
                response = request
            else:
                try:
                    response = await self._handler(request)
                except Exception as exc:
                    log.error("http_handler_failed", path=request.path, error=repr(exc), exc_info=exc)
                    response = HttpResponse(500, b"internal error\n")
            head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}",
                    f"Content-Type: {response.content_type}", f"Content-Length: {len(response.body)}",
                    "Connection: close", *(f"{k}: {v}" for k, v in response.headers.items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | HttpResponse:
    line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
    parts = line.split(" ")
    if len(parts) != 3:
        raise ValueError("bad request line")
    headers: dict[str, str] = {}
    while True:
        h = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        if not h:
            break
        name, _, value = h.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or "0")
    if length > MAX_BODY_BYTES:
        return HttpResponse(413, b"body too large\n")
    body = await reader.readexactly(length) if length > 0 else b""
    return HttpRequest(parts[0].upper(), parts[1].split("?", 1)[0], headers, body)
