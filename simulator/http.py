"""The simulator's HTTP/1.1 server for its stand-ins (market APIs, the cloud endpoint).

Requests are read by the same h11 core as the daemon's own endpoints (controller.core.http), with
keep-alive (the uploader's and market clients' connection pools reuse connections) and a body limit
large enough for any upload batch. The daemon never imports this.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from controller.core.http import Answer, Incoming, Limits, serve_connection

MAX_BODY = 256 * 1024 * 1024
LIMITS = Limits(max_head_bytes=1 << 20, max_body_bytes=MAX_BODY, keep_alive=True)


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def arg(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # drop the connection after answering (fault injection)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(data, separators=(",", ":")).encode(), h)


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._conns):
                t.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await serve_connection(reader, writer, self._respond, LIMITS)
        finally:
            self._conns.discard(task)

    async def _respond(self, incoming: Incoming | Answer) -> Answer | None:
        if isinstance(incoming, Answer):
            return incoming
        request = Request(incoming.method, incoming.path, incoming.query, incoming.headers, incoming.body)
        try:
            response = await self._handler(request)
        except Exception as exc:  # a bug in a stand-in answers 500, like a real server would
            response = Response.json({"message": f"internal error: {exc!r}"}, 500)
        if response.close:
            return None
        return Answer(response.status, response.body, tuple(response.headers.items()))
