"""Gap recovery against the cloud: what the cloud lacks is resent, what nobody has is read back.

(b) For each device (and the site's decisions, forecasts, events and plans), the cloud is asked which
    slots it holds over the window; rows this sink has already delivered (so the cloud once had them)
    but the cloud no longer holds are sent again.
(c) Devices that keep half-hourly profile logs (Emlite meters): half-hour slots missing both here and
    in the cloud are read back from the device and go into the outbox like any reading.

In the daemon the check runs every `coverage_check_interval_s`; `check_now` runs it once (backfill).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from controller.core.clock import Clock, align_down, align_up
from controller.core.logs import get_logger
from uploader.delivery import SinkCounters
from uploader.factory import make_sink
from uploader.outbox import Outbox
from uploader.sink import Sink, SinkError
from uploader.site import ProfileLog, UploaderSite, reopen_outbox
from uploader.tables import (
    DECISIONS,
    EVENTS,
    FORECASTS,
    PLANS,
    CloudRow,
    map_reading,
    reading_table,
    site_device_id,
)
from uploader.writer import OutboxService

log = get_logger("coverage")

PROFILE_SLOT_S = 1800.0
# Slots this recent are still being polled and uploaded: not gaps yet.
SETTLE_S = 3600.0

Run = Callable[[Callable[[], Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Stream:
    """One device's rows in one cloud table."""

    label: str  # device name (or "decisions", "events", ...)
    table: str
    key: str  # the device id its rows are filed under in the cloud
    # Rows told apart by an id of their own (events, plans: many to one site id and time): the column of that
    # id in the cloud, the rows' key in the outbox. None: the device id is the key, one row per time.
    id_column: str | None = None


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


def streams(site: UploaderSite) -> list[Stream]:
    out: list[Stream] = []
    for d in site.devices:
        table = reading_table(d.kind, site.routing)
        if table is not None:
            out.append(Stream(d.name, table.name, str(d.id)))
    if site.battery_id is not None:
        out.append(Stream("decisions", DECISIONS.name, str(site.battery_id)))
    site_key = str(site_device_id(site.site_id))
    # Forecasts are filed under the site's id, one per made_at: the cloud's slots for that id are theirs.
    out.append(Stream("forecasts", FORECASTS.name, site_key))
    # Events and plans are filed under it too, several at one time: compared by (their id, time).
    out.append(Stream("events", EVENTS.name, site_key, "event_id"))
    out.append(Stream("plans", PLANS.name, site_key, "plan_id"))
    return out


async def _to_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


async def resend_missing(sink: Sink, outbox: Outbox, site: UploaderSite, start: datetime, end: datetime, *,
                         batch_size: int = 1000, run: Run = _to_thread) -> dict[str, int]:
    """(b): resend rows `sink` delivered before but the cloud no longer holds. Returns rows per stream."""
    delivered_upto: int = await run(lambda: outbox.cursor(sink.name))
    out: dict[str, int] = {}
    for s in streams(site):
        if s.id_column is None:
            local = await run(lambda s=s: outbox.rows_between(s.table, s.key, start, end))  # type: ignore[misc]
        else:
            local = await run(lambda s=s: outbox.table_rows_between(s.table, start, end))  # type: ignore[misc]
        local = [r for r in local if r.seq <= delivered_upto]
        if not local:
            continue
        if s.id_column is None:
            held = await sink.slots(s.table, s.key, start, end)
            missing = [r for r in local if r.time not in held]
        else:
            held_ids = await sink.id_slots(s.table, s.key, s.id_column, start, end)
            missing = [r for r in local if (r.key, r.time) not in held_ids]
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


async def read_back_profiles(sinks: Sequence[Sink], outbox: Outbox, site: UploaderSite,
                             devices: Mapping[str, object], *, start: datetime, end: datetime, now: datetime,
                             run: Run = _to_thread) -> dict[str, int]:
    """(c): half-hour slots of profile-log devices missing here and in every sink's cloud, read from them.

    `devices`: the live drivers by name; one that is not there (or cannot read its log) is skipped."""
    out: dict[str, int] = {}
    step = timedelta(seconds=PROFILE_SLOT_S)
    first = align_up(start, PROFILE_SLOT_S)
    last = min(align_down(end, PROFILE_SLOT_S), align_down(now - timedelta(seconds=SETTLE_S), PROFILE_SLOT_S))
    for d in site.devices:
        table = reading_table(d.kind, site.routing)
        device = devices.get(d.name)
        if not d.profile_log or table is None or not isinstance(device, ProfileLog) or first >= last:
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
        rows: list[CloudRow] = []
        for r0, r1 in _ranges(wanted, step):
            for reading in await device.read_profile(r0, r1):
                row = map_reading(reading, site.routing)
                if row is not None and reading.time in wanted_set:
                    rows.append(row)
        if rows:
            result = await run(partial(outbox.add, rows))
            out[d.name] = int(result.inserted)
            log.warning("profile_read_back", device=d.name, rows=result.inserted, slots_missing=len(wanted))
    return out


async def run_coverage(site: UploaderSite, service: OutboxService, *, clock: Clock,
                       devices: Callable[[], Mapping[str, object]], counters: dict[str, SinkCounters]) -> None:
    """Every `coverage_check_interval_s`: resend what the cloud lost, read back what nobody has.

    `devices` returns the live drivers by name at the time of each check (they change on reloads)."""
    while True:
        await clock.sleep(site.uploader.coverage_check_interval_s)
        await service.ready.wait()
        await check_now(site, clock, devices(), counters)


async def check_now(site: UploaderSite, clock: Clock, devices: Mapping[str, object],
                    all_counters: dict[str, SinkCounters], *, since: datetime | None = None) -> dict[str, Any]:
    """Gap recovery now: (b) for every sink, then (c). Returns what was recovered (and what failed)."""
    now = clock.now()
    start = since if since is not None else now - timedelta(days=site.uploader.coverage_window_days)
    outbox = await asyncio.to_thread(partial(reopen_outbox, site))
    sinks: list[Sink] = [make_sink(s) for s in site.uploader.sinks]
    report: dict[str, Any] = {"resent": {}, "read_back": {}, "errors": []}
    try:
        for sink, sc in zip(sinks, site.uploader.sinks, strict=True):
            try:
                resent = await resend_missing(sink, outbox, site, start, now, batch_size=sc.batch_size)
            except SinkError as exc:
                report["errors"].append(f"{sink.name}: {exc.detail}")
                continue
            report["resent"][sink.name] = resent
            all_counters.setdefault(sink.name, SinkCounters()).rows_recovered += sum(resent.values())
        try:
            read_back = await read_back_profiles(sinks, outbox, site, devices, start=start, end=now, now=now)
            report["read_back"] = read_back
            for sink in sinks:
                all_counters.setdefault(sink.name, SinkCounters()).rows_recovered += sum(read_back.values())
        except SinkError as exc:
            report["errors"].append(f"profile read-back: {exc.detail}")
    finally:
        outbox.close()
        for sink in sinks:
            await sink.close()
    log.info("coverage_checked", report=report)
    return report
