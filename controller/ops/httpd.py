"""A minimal asyncio HTTP/1.1 endpoint for the metrics scrape and the local admin API.

Runs on the daemon's own event loop (so handlers read runtime state without locks), one request per
connection. Requests are read by the shared h11 core (controller.core.http), bounded: the request
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

from controller.core.http import Answer, Incoming, Limits, serve_connection
from controller.core.logs import get_logger

log = get_logger("ops.httpd")

MAX_BODY_BYTES = 512 * 1024  # a site file is a few kB (at most 256 kB); refuse anything absurd
MAX_HEAD_BYTES = 16 * 1024
MAX_CONNECTIONS = 32
READ_TIMEOUT_S = 10.0
LIMITS = Limits(MAX_HEAD_BYTES, MAX_BODY_BYTES, READ_TIMEOUT_S, keep_alive=False)
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
        await serve_connection(reader, writer, self._respond, LIMITS)

    async def _respond(self, request: Incoming | Answer) -> Answer:
        if isinstance(request, Answer):
            self.bad_requests += 1
            return request
        try:
            response = await self._handler(HttpRequest(request.method, request.path, request.headers, request.body))
        except Exception as exc:
            log.error("http_handler_failed", path=request.path, error=repr(exc), exc_info=exc)
            response = HttpResponse(500, b"internal error\n")
        return _answer(response)


def _answer(response: HttpResponse) -> Answer:
    return Answer(response.status, response.body, (("Content-Type", response.content_type),
                                                   *response.headers.items()))


def _head(response: HttpResponse) -> bytes:
    """The head of an answer sent without reading the request (a connection turned away at the cap)."""
    head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}",
            f"Content-Type: {response.content_type}", f"Content-Length: {len(response.body)}",
            "Connection: close", *(f"{k}: {v}" for k, v in response.headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
