"""The one HTTP/1.1 server core: h11 (the state machine httpx uses) over an asyncio stream, bounded.

Both the daemon's local endpoints (metrics, admin, web page: controller.ops.httpd) and the simulator's
stand-ins (market APIs, the cloud) serve through `serve_connection`; each keeps its own request and
response types and policies (limits, keep-alive, connection cap) around it. A malformed request never
raises: it is handed to the caller as the 4xx `Answer` to send, so the caller can count it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import h11

READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Limits:
    max_head_bytes: int  # request line and headers
    max_body_bytes: int  # checked against Content-Length before reading, and while reading
    read_timeout_s: float | None = None  # one whole request; None: as long as the client likes
    keep_alive: bool = False  # False: one request per connection, answered with Connection: close


@dataclass(frozen=True)
class Incoming:
    method: str  # upper-case
    target: str  # as sent: path and query
    headers: dict[str, str]  # lower-case names (a repeated header: its last value)
    body: bytes

    @property
    def path(self) -> str:
        # Split, not urlsplit: a target such as //etc/passwd is a path here, not a host.
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.target.partition("?")[2], keep_blank_values=True)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


# Given the request (or the 4xx answer to a malformed one), the answer to send; None drops the connection.
Respond = Callable[[Incoming | Answer], Awaitable[Answer | None]]


def bad(status: int, message: str) -> Answer:
    return Answer(status, (" ".join(message.split())[:200] + "\n").encode("utf-8", "replace"),
                  (("Content-Type", "text/plain; charset=utf-8"),))


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, respond: Respond,
                           limits: Limits) -> None:
    """Serve one connection until the client, the limits or the answer close it; closes the writer."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
    try:
        while True:
            request = await asyncio.wait_for(_read_request(conn, reader, limits), limits.read_timeout_s)
            if request is None:
                return
            answer = await respond(request)
            if answer is None:
                return
            close = isinstance(request, Answer) or not limits.keep_alive
            writer.write(_encode(conn, answer, close=close))
            await writer.drain()
            if close or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError, UnicodeDecodeError,
            h11.ProtocolError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader,
                        limits: Limits) -> Incoming | Answer | None:
    """One request within the limits, the answer to a malformed one, or None: closed between requests."""
    request: h11.Request | None = None
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            return bad(exc.error_status_hint, f"bad request: {exc}")
        if event is h11.NEED_DATA:
            chunk = await reader.read(READ_CHUNK)
            if not chunk and request is None and conn.their_state is h11.IDLE:
                return None  # nothing of a next request: the client is done
            try:
                conn.receive_data(chunk)
            except h11.RemoteProtocolError as exc:
                return bad(exc.error_status_hint, f"bad request: {exc}")
            continue
        if isinstance(event, h11.Request):
            if event.http_version not in (b"1.0", b"1.1"):  # h11 reads any N.N; we speak 1.x only
                return bad(505, f"HTTP/{event.http_version.decode('latin-1')} is not supported")
            # h11 bounds only a head still incomplete in its buffer: one that arrived whole in one read is
            # measured here.
            if len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers) > limits.max_head_bytes:
                return bad(431, "request head too large")
            request = event
            length = dict(event.headers).get(b"content-length")
            if length is not None and int(length) > limits.max_body_bytes:
                return bad(413, "body too large")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > limits.max_body_bytes:
                return bad(413, "body too large")
        elif isinstance(event, h11.EndOfMessage):
            break
        elif isinstance(event, h11.ConnectionClosed):
            if request is None:
                return None
            raise ConnectionError("closed before the request was complete")
    assert request is not None
    return Incoming(request.method.decode("latin-1").upper(), request.target.decode("latin-1"),
                    {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}, bytes(body))


def _encode(conn: h11.Connection, answer: Answer, *, close: bool) -> bytes:
    headers = [(k, v) for k, v in answer.headers if k.lower() not in ("content-length", "connection")]
    headers.append(("Content-Length", str(len(answer.body))))
    if close:
        headers.append(("Connection", "close"))
    reason = _reason(answer.status)
    try:
        return b"".join(b for b in (conn.send(h11.Response(status_code=answer.status, headers=headers,
                                                               reason=reason)),
                                    conn.send(h11.Data(data=answer.body)), conn.send(h11.EndOfMessage()))
                        if b is not None)
    except h11.LocalProtocolError:
        # h11 will not answer in this state (after some malformed requests): the answer goes out as is, closing.
        head = [f"HTTP/1.1 {answer.status} {reason}", *(f"{k}: {v}" for k, v in headers)]
        if not close:
            head.append("Connection: close")
        with contextlib.suppress(h11.LocalProtocolError):
            conn.send_failed()
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status"
