"""The PostgREST / Supabase sink: JSON upserts over HTTPS, as the field's Supabase project takes them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from controller.core.clock import utc
from controller.core.httpclient import client_options
from controller.core.logs import get_logger
from uploader.config import PostgrestSinkConfig
from uploader.sink import DeviceEntry, ErrorKind, SinkError, sqlstate_kind
from uploader.tables import TABLES, iso

log = get_logger("sink.postgrest")

PAGE_ROWS = 1000  # Supabase's default max-rows: ask in pages no larger than that


class PostgrestSink:
    def __init__(self, config: PostgrestSinkConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = config.name
        self.config = config
        key = config.api_key.get_secret_value() if config.api_key else None
        bearer = config.bearer_token.get_secret_value() if config.bearer_token else key
        headers: dict[str, str] = {}
        if key:
            headers["apikey"] = key
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        self._client = httpx.AsyncClient(base_url=config.url.rstrip("/") + "/rest/v1", headers=headers,
                                         timeout=config.timeout_s, transport=transport,
                                         **client_options())
        self.preference_warnings = 0

    async def close(self) -> None:
        await self._client.aclose()

    async def _post(self, table: str, body: bytes, conflict: Sequence[str]) -> None:
        headers = {"Content-Profile": self.config.schema_name, "Content-Type": "application/json",
                   "Prefer": "resolution=ignore-duplicates,return=minimal"}
        try:
            response = await self._client.post(f"/{table}", content=body, headers=headers,
                                               params={"on_conflict": ",".join(conflict)})
        except httpx.TimeoutException as exc:
            raise SinkError(ErrorKind.TRANSIENT, f"timeout: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise SinkError(ErrorKind.TRANSIENT, f"connection: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise classify(response)
        applied = response.headers.get("preference-applied", "")
        if "resolution=ignore-duplicates" not in applied:
            # The rows went in, but as plain inserts: a resend of this batch would fail with 409.
            raise SinkError(ErrorKind.CONFIG, f"server did not apply ignore-duplicates (Preference-Applied: "
                                              f"{applied!r}); check on_conflict support and the unique index")

    async def upload(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        body = json.dumps(list(rows), separators=(",", ":"), allow_nan=False).encode()
        await self._post(table, body, TABLES[table].conflict)

    async def upload_bodies(self, table: str, bodies: Sequence[str]) -> None:
        """Upload rows already encoded as JSON objects (as the outbox holds them: no decode/encode round trip)."""
        await self._post(table, ("[" + ",".join(bodies) + "]").encode(), TABLES[table].conflict)

    async def slots(self, table: str, device_id: str, start: datetime, end: datetime) -> set[datetime]:
        out: set[datetime] = set()
        async for page in self._pages(table, ("time",), device_id, start, end):
            out.update(utc(datetime.fromisoformat(r["time"])) for r in page)
        return out

    async def id_slots(self, table: str, device_id: str, id_column: str, start: datetime,
                       end: datetime) -> set[tuple[str, datetime]]:
        out: set[tuple[str, datetime]] = set()
        async for page in self._pages(table, (id_column, "time"), device_id, start, end):
            out.update((str(r[id_column]), utc(datetime.fromisoformat(r["time"]))) for r in page)
        return out

    async def _pages(self, table: str, columns: Sequence[str], device_id: str, start: datetime,
                     end: datetime) -> AsyncIterator[list[dict[str, Any]]]:
        """`columns` of the rows held for `device_id` in [start, end), a page at a time, in a total order (a
        page boundary between two rows of one time must neither skip nor repeat one)."""
        order = ",".join(f"{c}.asc" for c in dict.fromkeys(("time", *columns)))
        offset = 0
        while True:
            params: list[tuple[str, str | int | float | bool | None]] = [
                ("select", ",".join(columns)), ("device_id", f"eq.{device_id}"), ("time", f"gte.{iso(start)}"),
                ("time", f"lt.{iso(end)}"), ("order", order), ("limit", str(PAGE_ROWS)), ("offset", str(offset))]
            try:
                response = await self._client.get(f"/{table}", params=params,
                                                  headers={"Accept-Profile": self.config.schema_name})
            except httpx.TimeoutException as exc:
                raise SinkError(ErrorKind.TRANSIENT, f"timeout: {type(exc).__name__}") from exc
            except httpx.TransportError as exc:
                raise SinkError(ErrorKind.TRANSIENT, f"connection: {type(exc).__name__}") from exc
            if response.status_code >= 300:
                raise classify(response)
            page = response.json()
            yield page
            if len(page) < PAGE_ROWS:
                return
            offset += len(page)

    async def register_devices(self, devices: Sequence[DeviceEntry]) -> None:
        body = json.dumps([d.as_row() for d in devices]).encode()
        await self._post("mg_device_registry", body, ("device_id",))


def classify(response: httpx.Response) -> SinkError:
    """A PostgREST error answer as a SinkError (status first, then the PostgreSQL/PostgREST code)."""
    status = response.status_code
    code: str | None = None
    message = response.reason_phrase
    try:
        data = response.json()
        if isinstance(data, dict):
            code = str(data.get("code")) if data.get("code") is not None else None
            message = str(data.get("message") or message)
    except ValueError:
        pass
    detail = f"HTTP {status} {code or ''} {message}".strip()[:300]
    if status in (401, 403):
        return SinkError(ErrorKind.AUTH, detail, status=status, code=code)
    if status == 413:
        return SinkError(ErrorKind.TOO_LARGE, detail, status=status, code=code)
    if status == 409:
        return SinkError(ErrorKind.CONFLICT, detail, status=status, code=code)
    if status >= 500 or status in (408, 429):
        return SinkError(ErrorKind.TRANSIENT, detail, status=status, code=code)
    kind = sqlstate_kind(code)
    if kind is not None and kind is not ErrorKind.TRANSIENT:
        return SinkError(kind, detail, status=status, code=code)
    if status == 404:
        return SinkError(ErrorKind.CONFIG, detail, status=status, code=code)
    # Another 4xx without a code we know: the request is wrong, but no single row is shown to be to blame,
    # so nothing is quarantined: retried slowly while someone looks at the alert.
    return SinkError(ErrorKind.CONFIG, detail, status=status, code=code)
