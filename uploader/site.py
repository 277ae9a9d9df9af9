"""What the uploader knows of the site: a small typed view the application builds from its site model.

The uploader imports no application module and no device catalog: it is told the site's id, its
buffer and uploader settings, the devices it files rows for, the battery decisions are filed under,
and where each device kind's readings go in the cloud (`Routing`, declared by the kinds themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from uuid import UUID

from controller.core.reading import Reading
from uploader.config import BufferConfig, UploaderConfig
from uploader.outbox import Outbox
from uploader.sink import DeviceEntry
from uploader.tables import READING_TABLES, Routing, site_device_id


@runtime_checkable
class ProfileLog(Protocol):
    """A device that keeps its own history, so slots missed on our side can be read back from it."""

    async def read_profile(self, start: datetime, end: datetime) -> list[Reading]:
        """Readings the device holds for [start, end)."""


@dataclass(frozen=True)
class UploadedDevice:
    id: UUID
    name: str
    kind: str
    profile_log: bool  # its kind keeps a profile log: missing slots are read back from it


@dataclass(frozen=True)
class UploaderSite:
    site_id: str
    buffer: BufferConfig
    uploader: UploaderConfig
    devices: tuple[UploadedDevice, ...]
    battery_id: UUID | None  # decisions are filed under the battery; None: no controller, no decision rows
    routing: Routing

    def __post_init__(self) -> None:
        # A route to a table the schema lacks would fail every commit: refuse it when the view is built.
        tables = {t.name: t for t in READING_TABLES}
        for kind, (name, columns) in self.routing.items():
            table = tables.get(name)
            if table is None:
                raise ValueError(f"device kind {kind!r} is routed to {name!r}, not a reading table")
            unknown = sorted(set(columns.values()) - set(table.column_names))
            if unknown:
                raise ValueError(f"device kind {kind!r} is routed to columns {table.name} lacks: {unknown}")


def buffer_dir(site: UploaderSite) -> Path:
    return Path(site.buffer.path.replace("{site}", site.site_id))


def open_outbox(site: UploaderSite) -> tuple[Outbox, Path | None]:
    """The site's outbox, a corrupt file moved aside first (its new path is returned, else None)."""
    b = site.buffer
    return Outbox.open_or_replace(buffer_dir(site), synchronous=b.synchronous, max_bytes=b.max_bytes,
                                  retention_s=b.retention_days * 86400.0)


def reopen_outbox(site: UploaderSite) -> Outbox:
    """Another connection to the site's outbox (the writer owns creation and corruption handling)."""
    b = site.buffer
    return Outbox.open(buffer_dir(site), synchronous=b.synchronous, max_bytes=b.max_bytes,
                       retention_s=b.retention_days * 86400.0)


def device_entries(site: UploaderSite) -> list[DeviceEntry]:
    entries = [DeviceEntry(str(d.id), site.site_id, d.name, d.kind) for d in site.devices]
    # Events are filed under the site's own id: register it so registry joins (and RLS) cover them.
    entries.append(DeviceEntry(str(site_device_id(site.site_id)), site.site_id, site.site_id, "site"))
    return entries
