"""Gap recovery against the cloud: what the cloud lacks is resent, what nobody has is read back.

(b) For each device, the cloud is asked which slots it holds over the window; rows this sink has
    already delivered (so the cloud once had them) but the cloud no longer holds are sent again.
(c) Emlite meters keep half-hourly profile logs: half-hour slots missing both here and in the cloud
    are read back from the meter and go into the outbox like any reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.config import SiteConfig
from controller.core.clock import align_down, align_up
from controller.core.logs import get_logger
from devices.base import Device, HasProfileLog
from uploader.outbox import Outbox
from uploader.sink import Sink
from uploader.tables import DECISIONS, map_reading, table_for_kind

log = get_logger("coverage")

PROFILE_SLOT_S = 1800.0
# Slots this recent are still being polled and uploaded: not gaps yet.
SETTLE_S = 3600.0

Run = Callable[[Callable[[], Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Stream:
    """One device's rows in one cloud table."""

    label: str  # device name (or "decisions")
    table: str
    key: str


@dataclass
class CoverageReport:
    resent: dict[str, dict[str, int]] = field(default_factory=dict)  # sink -> stream label -> rows
    read_back: dict[str, int] = field(default_factory=dict)  # meter name -> rows read from its profile log
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"resent": self.resent, "read_back": self.read_back, "errors": self.errors}

    @property
    def total(self) -> int:
        return sum(sum(v.values()) for v in self.resent.values()) + sum(self.read_back.values())


def streams(config: SiteConfig) -> list[Stream]:
    out: list[Stream] = []
    for d in config.devices:
        table = table_for_kind(d.type)
        if table is not None:
            out.append(Stream(d.name, table.name, str(d.id)))
    if config.controller is not None:
        out.append(Stream("decisions", DECISIONS.name, str(config.device(config.controller.battery).id)))
    return out


async def _to_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


async def resend_missing(sink: Sink, outbox: Outbox, config: SiteConfig, start: datetime, end: datetime, *,
                         batch_size: int = 1000, run: Run = _to_thread) -> dict[str, int]:
    """(b): resend rows `sink` delivered before but the cloud no longer holds. Returns rows per stream."""
    delivered_upto: int = await run(lambda: outbox.cursor(sink.name))
    out: dict[str, int] = {}
    for s in streams(config):
        local = await run(lambda s=s: outbox.rows_between(s.table, s.key, start, end))  # type: ignore[misc]
        local = [r for r in local if r.seq <= delivered_upto]
        if not local:
            continue
        held = await sink.slots(s.table, s.key, start, end)
        missing = [r for r in local if r.time not in held]
        for i in range(0, len(missing), batch_size):
            await sink.upload_bodies(s.table, [r.body for r in missing[i:i + batch_size]])
        if missing:
            out[s.label] = len(missing)
            log.warning("coverage_resent", sink=sink.name, stream=s.label, rows=len(missing),
                        first=missing[0].time.isoformat(), last=missing[-1].time.isoformat())
    return out


def _ranges(slots: Sequence[datetime], step: timedelta) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for t in slots:
        if out and out[-1][1] == t:
            out[-1] = (out[-1][0], t + step)
        else:
            out.append((t, t + step))
    return out


async def read_back_profiles(sinks: Sequence[Sink], outbox: Outbox, config: SiteConfig,
                             devices: Mapping[str, Device], *, start: datetime, end: datetime, now: datetime,
                             run: Run = _to_thread) -> dict[str, int]:
    """(c): half-hour slots of Emlite meters missing here and in every sink's cloud, read from the meters."""
    out: dict[str, int] = {}
    step = timedelta(seconds=PROFILE_SLOT_S)
    first = align_up(start, PROFILE_SLOT_S)
    last = min(align_down(end, PROFILE_SLOT_S), align_down(now - timedelta(seconds=SETTLE_S), PROFILE_SLOT_S))
    for d in config.devices:
        table = table_for_kind(d.type)
        device = devices.get(d.name)
        if d.type != "emlite" or table is None or not isinstance(device, HasProfileLog) or first >= last:
            continue
        key = str(d.id)
        local = await run(lambda: outbox.rows_between(table.name, key, first, last))  # noqa: B023
        have = {r.time for r in local}
        held: set[datetime] | None = None
        for sink in sinks:
            s_held = await sink.slots(table.name, key, first, last)
            held = s_held if held is None else held & s_held
        have |= held or set()
        wanted: list[datetime] = []
        t = first
        while t < last:
            if t not in have:
                wanted.append(t)
            t += step
        if not wanted:
            continue
        wanted_set = set(wanted)
        rows = []
        for r0, r1 in _ranges(wanted, step):
            for reading in await device.read_profile(r0, r1):
                row = map_reading(reading)
                if row is not None and reading.time in wanted_set:
                    rows.append(row)
        if rows:
            result = await run(lambda rows=rows: outbox.add(rows))
            out[d.name] = int(result.inserted)
            log.warning("profile_read_back", device=d.name, rows=result.inserted, slots_missing=len(wanted))
    return out
