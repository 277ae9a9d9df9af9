"""The uploader's daemon components: the outbox writer (critical), one delivery loop per sink, and the
periodic coverage check.

The writer takes readings, decisions and events from the bus through synchronous listeners that
are registered once per runtime (not per task), so nothing published while the writer restarts on
a reload is missed; each second it commits what arrived in one transaction, then beats.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from controller.config import SiteConfig
from controller.core.bus import DecisionRecord, Event
from controller.core.clock import Clock
from controller.core.component import STOP_OUTBOX, STOP_UPLOAD, ComponentSpec
from controller.core.logs import get_logger
from controller.core.reading import Reading
from controller.core.supervisor import Backoff
from uploader.config import PostgresSinkConfig, PostgrestSinkConfig
from uploader.coverage import read_back_profiles, resend_missing
from uploader.delivery import Delivery, SinkCounters
from uploader.factory import make_sink
from uploader.outbox import Outbox, OutboxCorrupt, move_aside, outbox_path
from uploader.sink import DeviceEntry, Sink, SinkError
from uploader.tables import CloudRow, map_decision, map_event, map_reading, site_device_id

if TYPE_CHECKING:  # interim: the uploader takes typed arguments once the composition root lands
    from controller.runtime import Runtime

log = get_logger("uploader")

T = TypeVar("T")

COMMIT_INTERVAL_S = 1.0
# Real seconds between commits at least: every commit is an fsync, and this lets readings arriving
# together (all devices at a slot boundary) share one.
MIN_COMMIT_GAP_S = 0.01
PRUNE_INTERVAL_S = 600.0


def buffer_dir(config: SiteConfig) -> Path:
    return Path(config.buffer.path.replace("{site}", config.site.id))


def open_outbox(config: SiteConfig) -> tuple[Outbox, Path | None]:
    b = config.buffer
    return Outbox.open_or_replace(buffer_dir(config), synchronous=b.synchronous, max_bytes=b.max_bytes,
                                  retention_s=b.retention_days * 86400.0)


def reopen_outbox(config: SiteConfig) -> Outbox:
    """Another connection to the site's outbox (the writer owns creation and corruption handling)."""
    b = config.buffer
    return Outbox.open(buffer_dir(config), synchronous=b.synchronous, max_bytes=b.max_bytes,
                       retention_s=b.retention_days * 86400.0)


def device_entries(config: SiteConfig) -> list[DeviceEntry]:
    entries = [DeviceEntry(str(d.id), config.site.id, d.name, d.type) for d in config.devices]
    # Events are filed under the site's own id: register it so registry joins (and RLS) cover them.
    entries.append(DeviceEntry(str(site_device_id(config.site.id)), config.site.id, config.site.id, "site"))
    return entries


class OutboxService:
    """`runtime.services["outbox"]`: the intake from the bus, the writer task, and the shared state of uploads."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._readings: list[Reading] = []
        self._decisions: list[DecisionRecord] = []
        self._events: list[Event] = []
        self.arrived = asyncio.Event()
        runtime.bus.readings.on(self._on_reading)
        runtime.bus.decisions.on(self._on_decision)
        runtime.bus.events.on(self._on_event)
        self.outbox: Outbox | None = None
        self.ready = asyncio.Event()
        self.generation = 0  # bumped when the database file is replaced: uploaders reopen
        self.wakers: set[asyncio.Event] = set()
        self.rows_written = 0
        self.rows_skipped = 0
        self.commits = 0
        self.writer_starts = 0
        self.dropped_pending = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._pending_alert: str | None = None  # a replaced corrupt file, alerted from the loop thread
        self._retry: list[CloudRow] = []  # rows of a commit that failed, first in line for the next
        self._write_failing = False

    def _on_reading(self, item: Reading) -> None:
        self._readings.append(item)
        self.arrived.set()

    def _on_decision(self, item: DecisionRecord) -> None:
        self._decisions.append(item)
        self.arrived.set()

    def _on_event(self, item: Event) -> None:
        self._events.append(item)
        self.arrived.set()

    @property
    def queued(self) -> int:
        return len(self._readings) + len(self._decisions) + len(self._events)

    async def _call(self, fn: Callable[[], T]) -> T:
        # One thread, in order: a commit in flight always completes before the final flush and close.
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _take(self) -> list[CloudRow]:
        config = self.runtime.config
        rows, self._retry = self._retry, []
        readings, self._readings[:] = list(self._readings), []
        decisions, self._decisions[:] = list(self._decisions), []
        events, self._events[:] = list(self._events), []
        for r in readings:
            row = map_reading(r)
            if row is None:
                self.rows_skipped += 1
                log.warning("reading_without_cloud_table", device=r.device, kind=r.kind)
            else:
                rows.append(row)
        if decisions:
            battery_id = config.device(config.controller.battery).id if config.controller else None
            if battery_id is None:
                self.rows_skipped += len(decisions)
            else:
                rows.extend(map_decision(d, battery_id) for d in decisions)
        rows.extend(map_event(e, config.site.id) for e in events)
        return rows

    def _write(self, rows: list[CloudRow]) -> int:
        """Commit in the writer thread; a corrupt file is moved aside and the rows go into a fresh one."""
        assert self.outbox is not None
        try:
            result = self.outbox.add(rows)
        except OutboxCorrupt as exc:
            self._replace_corrupt(str(exc))
            result = self.outbox.add(rows)
        self.rows_written += result.inserted
        self.commits += 1
        return result.dropped_pending

    def _replace_corrupt(self, error: str) -> None:
        assert self.outbox is not None
        self.outbox.close()
        config = self.runtime.config
        aside = move_aside(outbox_path(buffer_dir(config)), self.runtime.clock.now())
        self.outbox, _ = open_outbox(config)
        self.outbox.register_sinks(s.name for s in config.uploader.sinks)
        self.generation += 1
        log.error("outbox_corrupt_moved_aside", path=str(aside), error=error)
        self._pending_alert = str(aside)

    async def commit(self) -> None:
        rows = self._take()
        if rows:
            try:
                dropped = await self._call(partial(self._write, rows))
            except sqlite3.OperationalError as exc:
                # Disk full, I/O error, locked beyond the timeout: the rows go back to the head of the queue and
                # the writer does not beat, so a lasting failure reaches the watchdog; meanwhile operators know.
                self._retry[:0] = rows
                if not self._write_failing:
                    self._write_failing = True
                    self.runtime.alert("outbox_write_failed", "Critical", "cannot commit to the outbox; retrying",
                                       error=str(exc), queued=len(self._retry))
                log.error("outbox_write_failed", error=str(exc), queued=len(self._retry))
                return
            self._write_failing = False
            if dropped:
                self.dropped_pending += dropped
                self.runtime.alert("outbox_full_dropped", "Critical",
                                   f"outbox full of undelivered rows: dropped the {dropped} oldest",
                                   rows=dropped, max_bytes=self.runtime.config.buffer.max_bytes)
            for w in self.wakers:
                w.set()
        if self._pending_alert:
            self._alert_corrupt(self._pending_alert)
            self._pending_alert = None
        self.runtime.beat("outbox")

    def _alert_corrupt(self, aside: str) -> None:
        self.runtime.alert("outbox_corrupt", "Critical",
                           "outbox database was corrupt: moved aside, a fresh one started", path=aside)

    async def run_writer(self) -> None:
        self.writer_starts += 1
        config = self.runtime.config
        outbox, aside = await self._call(partial(open_outbox, config))
        self.outbox = outbox
        if aside is not None:
            self.generation += 1
            self._alert_corrupt(str(aside))
        await self._call(partial(outbox.register_sinks, [s.name for s in config.uploader.sinks]))
        self.ready.set()
        clock = self.runtime.clock
        next_prune = clock.monotonic() + PRUNE_INTERVAL_S
        try:
            while True:
                # Commit as soon as something arrives (what arrives during a commit goes in the next one),
                # so the window in which a crash loses a reading is one commit long; beat at least every second.
                await _first(self.arrived.wait(), clock.sleep(COMMIT_INTERVAL_S))
                self.arrived.clear()
                await self.commit()
                await asyncio.sleep(MIN_COMMIT_GAP_S)
                if clock.monotonic() >= next_prune:
                    next_prune = clock.monotonic() + PRUNE_INTERVAL_S
                    await self._call(partial(self._prune))
        finally:
            # Shutdown (or reload): whatever is queued is committed before the file is closed.
            self.ready.clear()
            rows = self._take()
            self._executor.submit(self._final_flush, rows).result()

    def _prune(self) -> None:
        assert self.outbox is not None
        self.outbox.prune(self.runtime.clock.now())

    def _final_flush(self, rows: list[CloudRow]) -> None:
        if self.outbox is None:
            return
        try:
            if rows:
                self._write(rows)
                log.info("outbox_flushed", rows=len(rows))
        except (sqlite3.Error, OutboxCorrupt) as exc:
            log.error("outbox_final_flush_failed", rows=len(rows), error=str(exc))
        finally:
            self.outbox.close()
            self.outbox = None


async def run_uploader(runtime: Runtime, service: OutboxService,
                       sink_config: PostgrestSinkConfig | PostgresSinkConfig) -> None:
    counters: SinkCounters = runtime.services.sinks.setdefault(sink_config.name, SinkCounters())
    sink = make_sink(sink_config)
    wake = asyncio.Event()
    service.wakers.add(wake)
    outbox: Outbox | None = None
    try:
        registered = False
        next_registration = runtime.clock.monotonic()
        while True:
            await service.ready.wait()
            generation = service.generation
            config = runtime.config
            outbox = await asyncio.to_thread(partial(reopen_outbox, config))
            delivery = Delivery(sink, outbox, runtime.clock, batch_size=sink_config.batch_size,
                                backoff_max_s=sink_config.backoff_max_s, alert=runtime.alert, counters=counters,
                                rng=random.Random())
            while service.generation == generation and service.ready.is_set():
                n, delay = await delivery.step()
                if not registered and delay == 0 and runtime.clock.monotonic() >= next_registration:
                    try:
                        await sink.register_devices(device_entries(config))
                        registered = True
                    except SinkError as exc:
                        # Readings do not wait for the registry; it is tried again now and then.
                        next_registration = runtime.clock.monotonic() + sink_config.backoff_max_s
                        log.warning("device_registration_failed", sink=sink.name, error=exc.detail)
                if delay > 0:
                    await runtime.clock.sleep(delay)
                elif n == 0:
                    await _wait(wake, runtime, sink_config.interval_s)
            outbox.close()
            outbox = None
    finally:
        service.wakers.discard(wake)
        if outbox is not None:
            outbox.close()
        await sink.close()


async def _wait(wake: asyncio.Event, runtime: Runtime, idle_s: float) -> None:
    wake.clear()
    await _first(wake.wait(), runtime.clock.sleep(idle_s))


async def _first(*aws: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of `aws` finishes; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


async def run_coverage(runtime: Runtime, service: OutboxService) -> None:
    """Every `coverage_check_interval_s`: resend what the cloud lost, read back what nobody has."""
    clock = runtime.clock
    while True:
        await clock.sleep(runtime.config.uploader.coverage_check_interval_s)
        await service.ready.wait()
        await check_now(runtime.config, runtime.clock, runtime.services.devices, runtime.services.sinks)


async def check_now(config: SiteConfig, clock: Clock, devices: dict[str, Any],
                    all_counters: dict[str, SinkCounters], *, since: datetime | None = None) -> dict[str, Any]:
    """Gap recovery now: (b) for every sink, then (c). Returns what was recovered (and what failed)."""
    now = clock.now()
    start = since if since is not None else now - timedelta(days=config.uploader.coverage_window_days)
    outbox = await asyncio.to_thread(partial(reopen_outbox, config))
    sinks: list[Sink] = [make_sink(s) for s in config.uploader.sinks]
    report: dict[str, Any] = {"resent": {}, "read_back": {}, "errors": []}
    try:
        for sink, sc in zip(sinks, config.uploader.sinks, strict=True):
            try:
                resent = await resend_missing(sink, outbox, config, start, now, batch_size=sc.batch_size)
            except SinkError as exc:
                report["errors"].append(f"{sink.name}: {exc.detail}")
                continue
            report["resent"][sink.name] = resent
            all_counters.setdefault(sink.name, SinkCounters()).rows_recovered += sum(resent.values())
        try:
            read_back = await read_back_profiles(sinks, outbox, config, devices, start=start, end=now, now=now)
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


async def deliver_all(config: SiteConfig, clock: Clock, all_counters: dict[str, SinkCounters]) -> dict[str, Any]:
    """Deliver everything pending to every sink now (for `backfill`): rows per sink, or the error that stopped it."""
    out: dict[str, Any] = {}
    outbox = await asyncio.to_thread(partial(reopen_outbox, config))
    try:
        for sc in config.uploader.sinks:
            sink = make_sink(sc)
            delivery = Delivery(sink, outbox, clock, batch_size=sc.batch_size, backoff_max_s=sc.backoff_max_s,
                                alert=_log_alert, counters=all_counters.setdefault(sc.name, SinkCounters()))
            total = 0
            try:
                while n := await delivery.deliver_once():
                    total += n
                out[sc.name] = total
            except SinkError as exc:
                out[sc.name] = {"rows": total, "error": exc.detail}
            finally:
                await sink.close()
    finally:
        outbox.close()
    return out


def _log_alert(kind: str, level: str, message: str, **data: Any) -> None:
    log.warning("alert", kind=kind, level=level, message=message, **data)


def components(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    service = runtime.services.outbox
    if service is None:
        service = OutboxService(runtime)
        runtime.services.outbox = service
    sink_names = tuple(s.name for s in config.uploader.sinks)
    specs = [ComponentSpec("outbox", key=(config.site.id, config.buffer, sink_names, config.controller is not None),
                           factory=service.run_writer, critical=True, stop_order=STOP_OUTBOX,
                           backoff=Backoff(initial_s=1.0, max_s=30.0))]
    for sc in config.uploader.sinks:
        specs.append(ComponentSpec(f"upload:{sc.name}", key=(sc, config.buffer, tuple(config.devices)),
                                   factory=partial(run_uploader, runtime, service, sc), stop_order=STOP_UPLOAD,
                                   backoff=Backoff(initial_s=1.0, max_s=60.0)))
    if config.uploader.sinks:
        specs.append(ComponentSpec("coverage", key=(config.uploader, config.buffer, tuple(config.devices)),
                                   factory=partial(run_coverage, runtime, service), stop_order=STOP_UPLOAD,
                                   backoff=Backoff(initial_s=10.0, max_s=600.0)))
    return specs
