"""The outbox writer: readings, decisions, events, plans and forecasts from the bus, committed to the outbox
as cloud rows. Plans arrive as `plan_made` events (their `plan` data is the `plan --json` body): each such
event files one row in the events table and one in the plans table. Forecasts come from `bus.forecasts`.

The intake (`OutboxService`) is created once by the caller and kept across reloads: it registers
synchronous bus listeners once, so nothing published while the writer restarts on a reload is
missed, and it holds what the sinks' delivery loops share with the writer (the open store, its
generation, the wakers). Each start of the writer (`OutboxWriter`, one per site view) commits what
arrived as soon as it arrives, in one transaction, then beats; at least once a second.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from controller.core.bus import Bus, DecisionRecord, Event
from controller.core.clock import Clock, wait_event
from controller.core.forecast import Forecast
from controller.core.logs import get_logger
from controller.core.reading import Reading
from uploader.delivery import Alert
from uploader.outbox import Outbox, OutboxCorrupt, move_aside, outbox_path
from uploader.site import UploaderSite, buffer_dir, open_outbox
from uploader.tables import CloudRow, map_decision, map_event, map_forecast, map_plan, map_reading, plan_of

log = get_logger("uploader")

T = TypeVar("T")

Beat = Callable[[str], None]  # marks the writer alive for the watchdog (runtime.beat)

COMMIT_INTERVAL_S = 1.0
# Real seconds between commits at least: every commit is an fsync, and this lets readings arriving
# together (all devices at a slot boundary) share one.
MIN_COMMIT_GAP_S = 0.01
PRUNE_INTERVAL_S = 600.0


class OutboxService:
    """The intake from the bus and the shared state of uploads; one per daemon, kept across reloads."""

    def __init__(self, bus: Bus) -> None:
        self._readings: list[Reading] = []
        self._decisions: list[DecisionRecord] = []
        self._events: list[Event] = []
        self._forecasts: list[Forecast] = []
        self.arrived = asyncio.Event()
        bus.readings.on(self._on_reading)
        bus.decisions.on(self._on_decision)
        bus.events.on(self._on_event)
        bus.forecasts.on(self._on_forecast)
        self.outbox: Outbox | None = None  # the writer's store while it runs (status reads its stats)
        self.ready = asyncio.Event()
        self.generation = 0  # bumped when the database file is replaced: uploaders reopen
        self.wakers: set[asyncio.Event] = set()
        self.rows_written = 0
        self.rows_skipped = 0
        self.commits = 0
        self.writer_starts = 0
        self.dropped_pending = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self.pending_alert: str | None = None  # a replaced corrupt file, alerted from the loop thread
        self.retry: list[CloudRow] = []  # rows of a commit that failed, first in line for the next
        self.write_failing = False

    def _on_reading(self, item: Reading) -> None:
        self._readings.append(item)
        self.arrived.set()

    def _on_decision(self, item: DecisionRecord) -> None:
        self._decisions.append(item)
        self.arrived.set()

    def _on_event(self, item: Event) -> None:
        self._events.append(item)
        self.arrived.set()

    def _on_forecast(self, item: Forecast) -> None:
        self._forecasts.append(item)
        self.arrived.set()

    @property
    def queued(self) -> int:
        return len(self._readings) + len(self._decisions) + len(self._events) + len(self._forecasts)

    def take(self) -> tuple[list[Reading], list[DecisionRecord], list[Event]]:
        """Everything that arrived since the last take (forecasts: `take_forecasts`)."""
        taken = (list(self._readings), list(self._decisions), list(self._events))
        self._readings[:], self._decisions[:], self._events[:] = [], [], []
        return taken

    def take_forecasts(self) -> list[Forecast]:
        taken, self._forecasts = self._forecasts, []
        return taken


class OutboxWriter:
    """One start of the writer, for one site view: a change to the view restarts it."""

    def __init__(self, service: OutboxService, site: UploaderSite, *, clock: Clock, alert: Alert,
                 beat: Beat) -> None:
        self.service = service
        self.site = site
        self.clock = clock
        self.alert = alert
        self.beat = beat

    async def _call(self, fn: Callable[[], T]) -> T:
        # One thread, in order: a commit in flight always completes before the final flush and close.
        return await asyncio.get_running_loop().run_in_executor(self.service.executor, fn)

    def _take(self) -> list[CloudRow]:
        s, site = self.service, self.site
        rows, s.retry = s.retry, []
        readings, decisions, events = s.take()
        for r in readings:
            row = map_reading(r, site.routing)
            if row is None:
                s.rows_skipped += 1
                log.warning("reading_without_cloud_table", device=r.device, kind=r.kind)
            else:
                rows.append(row)
        if decisions:
            if site.battery_id is None:
                s.rows_skipped += len(decisions)
            else:
                rows.extend(map_decision(d, site.battery_id) for d in decisions)
        for e in events:
            rows.append(map_event(e, site.site_id))
            plan = plan_of(e)
            if plan is not None:
                try:
                    rows.append(map_plan(plan, site.site_id))
                except (KeyError, TypeError, ValueError) as exc:  # a malformed body: its event still goes
                    s.rows_skipped += 1
                    log.warning("plan_without_cloud_row", error=repr(exc))
        for f in s.take_forecasts():
            try:
                rows.append(map_forecast(f, site.site_id))
            except (TypeError, ValueError) as exc:  # one unencodable forecast never blocks the others
                s.rows_skipped += 1
                log.warning("forecast_without_cloud_row", error=repr(exc))
        return rows

    def _write(self, rows: list[CloudRow]) -> int:
        """Commit in the writer thread; a corrupt file is moved aside and the rows go into a fresh one."""
        s = self.service
        assert s.outbox is not None
        try:
            result = s.outbox.add(rows)
        except OutboxCorrupt as exc:
            self._replace_corrupt(str(exc))
            result = s.outbox.add(rows)
        s.rows_written += result.inserted
        s.commits += 1
        return result.dropped_pending

    def _replace_corrupt(self, error: str) -> None:
        s = self.service
        assert s.outbox is not None
        s.outbox.close()
        aside = move_aside(outbox_path(buffer_dir(self.site)), self.clock.now())
        s.outbox, _ = open_outbox(self.site)
        s.outbox.register_sinks(sc.name for sc in self.site.uploader.sinks)
        s.generation += 1
        log.error("outbox_corrupt_moved_aside", path=str(aside), error=error)
        s.pending_alert = str(aside)

    async def commit(self) -> None:
        s = self.service
        rows = self._take()
        if rows:
            try:
                dropped = await self._call(partial(self._write, rows))
            except sqlite3.OperationalError as exc:
                # Disk full, I/O error, locked beyond the timeout: the rows go back to the head of the queue and
                # the writer does not beat, so a lasting failure reaches the watchdog; meanwhile operators know.
                s.retry[:0] = rows
                if not s.write_failing:
                    s.write_failing = True
                    self.alert("outbox_write_failed", "Critical", "cannot commit to the outbox; retrying",
                               error=str(exc), queued=len(s.retry))
                log.error("outbox_write_failed", error=str(exc), queued=len(s.retry))
                return
            s.write_failing = False
            if dropped:
                s.dropped_pending += dropped
                self.alert("outbox_full_dropped", "Critical",
                           f"outbox full of undelivered rows: dropped the {dropped} oldest",
                           rows=dropped, max_bytes=self.site.buffer.max_bytes)
            for w in s.wakers:
                w.set()
        if s.pending_alert:
            self._alert_corrupt(s.pending_alert)
            s.pending_alert = None
        self.beat("outbox")

    def _alert_corrupt(self, aside: str) -> None:
        self.alert("outbox_corrupt", "Critical",
                   "outbox database was corrupt: moved aside, a fresh one started", path=aside)

    async def run(self) -> None:
        s = self.service
        s.writer_starts += 1
        outbox, aside = await self._call(partial(open_outbox, self.site))
        s.outbox = outbox
        if aside is not None:
            s.generation += 1
            self._alert_corrupt(str(aside))
        await self._call(partial(outbox.register_sinks, [sc.name for sc in self.site.uploader.sinks]))
        s.ready.set()
        clock = self.clock
        next_prune = clock.monotonic() + PRUNE_INTERVAL_S
        try:
            while True:
                # Commit as soon as something arrives (what arrives during a commit goes in the next one),
                # so the window in which a crash loses a reading is one commit long; beat at least every second.
                await wait_event(s.arrived, clock, COMMIT_INTERVAL_S)
                s.arrived.clear()
                await self.commit()
                await asyncio.sleep(MIN_COMMIT_GAP_S)
                if clock.monotonic() >= next_prune:
                    next_prune = clock.monotonic() + PRUNE_INTERVAL_S
                    await self._call(partial(self._prune))
        finally:
            # Shutdown (or reload): whatever is queued is committed before the file is closed.
            s.ready.clear()
            rows = self._take()
            s.executor.submit(self._final_flush, rows).result()

    def _prune(self) -> None:
        assert self.service.outbox is not None
        self.service.outbox.prune(self.clock.now())

    def _final_flush(self, rows: list[CloudRow]) -> None:
        s = self.service
        if s.outbox is None:
            return
        try:
            if rows:
                self._write(rows)
                log.info("outbox_flushed", rows=len(rows))
        except (sqlite3.Error, OutboxCorrupt) as exc:
            log.error("outbox_final_flush_failed", rows=len(rows), error=str(exc))
        finally:
            s.outbox.close()
            s.outbox = None
