"""What every sink does, and how its failures are classified (cloud.md, "Errors").

A sink uploads batches of cloud rows (idempotently: a batch sent twice leaves one row per key),
tells which slots the cloud holds for a device, and registers the site's devices. It never decides
what to do about a failure: it raises a `SinkError` of a kind, and the uploader acts on the kind.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class ErrorKind(enum.StrEnum):
    AUTH = "auth"  # 401/403, expired JWT, password refused: configuration; alert, keep data, retry slowly
    CONFIG = "config"  # missing table/schema, conflict handling not applied: configuration, retry slowly
    CONFLICT = "conflict"  # 409/23505: the conflict target is wrong for the table; alert, retry slowly
    TOO_LARGE = "too_large"  # 413: halve the batch
    BAD_ROW = "bad_row"  # the data of some row is refused: bisect to isolate it, quarantine it
    TRANSIENT = "transient"  # 5xx, timeouts, connection errors: back off with jitter and retry


class SinkError(Exception):
    def __init__(self, kind: ErrorKind, detail: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status
        self.code = code


@dataclass(frozen=True)
class DeviceEntry:
    device_id: str
    site: str
    name: str
    type: str

    def as_row(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "site": self.site, "name": self.name, "type": self.type}


class Sink(Protocol):
    name: str

    async def upload(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` (every column present) into `table`, ignoring rows whose key is already there."""

    async def upload_bodies(self, table: str, bodies: Sequence[str]) -> None:
        """The same, for rows already encoded as JSON objects (as the outbox stores them)."""

    async def slots(self, table: str, device_id: str, start: datetime, end: datetime) -> set[datetime]:
        """Times the cloud holds for `device_id` in [start, end)."""

    async def id_slots(self, table: str, device_id: str, id_column: str, start: datetime,
                       end: datetime) -> set[tuple[str, datetime]]:
        """(`id_column`, time) of the rows the cloud holds for `device_id` in [start, end): for tables whose rows
        are told apart by an id of their own (events, plans), many of them to one device id and time."""

    async def register_devices(self, devices: Sequence[DeviceEntry]) -> None:
        """Add the devices to `mg_device_registry` (existing entries are left alone)."""

    async def close(self) -> None: ...


# PostgreSQL SQLSTATE classes that mean "this row's data is unacceptable" (not the batch or the setup).
BAD_ROW_SQLSTATES = ("22", "23502", "23514", "23503", "42804")


def sqlstate_kind(code: str | None) -> ErrorKind | None:
    """The kind of a PostgreSQL error code, or None if the code alone does not tell."""
    if not code:
        return None
    if code == "23505":
        return ErrorKind.CONFLICT
    if code in ("28000", "28P01", "42501", "PGRST301", "PGRST300", "PGRST302"):
        return ErrorKind.AUTH
    if code in ("42P01", "42703", "3F000", "42P10", "PGRST106", "PGRST204", "PGRST205"):
        return ErrorKind.CONFIG
    if code == "PGRST102" or any(code.startswith(p) for p in BAD_ROW_SQLSTATES):
        return ErrorKind.BAD_ROW
    if code.startswith(("08", "53", "57", "40")):
        return ErrorKind.TRANSIENT
    return None
