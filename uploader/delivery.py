"""Delivery of the outbox to one sink: batches in outbox order, errors handled by kind (cloud.md).

The cursor of the sink moves past a batch only when every row of it is in the cloud or, for a row
the cloud refuses on its own, in quarantine. Any other failure leaves the batch pending: it is sent
again (idempotently) after a pause that depends on the kind of failure.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.core.clock import Clock
from controller.core.logs import get_logger
from uploader.outbox import Outbox, StoredRow
from uploader.sink import ErrorKind, Sink, SinkError

log = get_logger("uploader")

Alert = Callable[..., None]  # runtime.alert(kind, level, message, **data)
Run = Callable[[Callable[[], Any]], Awaitable[Any]]  # runs blocking outbox calls off the loop


@dataclass
class SinkCounters:
    """Per-sink figures for the metrics exporter (`runtime.services.sinks[name]`)."""

    successes: int = 0  # batches accepted
    failures: int = 0  # attempts that failed (any kind)
    latency_sum_s: float = 0.0  # real seconds per upload request
    latency_count: int = 0
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    rows_uploaded: int = 0
    rows_recovered: int = 0  # resent by the coverage check or read back from meters
    rows_quarantined: int = 0
    batch_size: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    child_drains: int = 0  # backlogs handed to a child process (uploader/drain.py)
    child_rows: int = 0  # rows those children uploaded (in rows_uploaded too)
    child_failures: int = 0  # children that died without an answer
    drain_pid: int | None = None  # the child uploading now
    # An upload_backlog alert stands: kept with the counters across reloads and restarts of the sink's
    # loop, so one episode raises one alert however often the loop is rebuilt.
    backlog_alerted: bool = False


@dataclass
class BackoffState:
    initial_s: float
    max_s: float
    attempt: int = 0

    def next_delay(self, rng: random.Random) -> float:
        self.attempt += 1
        # The exponent is capped: 2 ** 1024 overflows a float, which crashed the loop after ~1000 retries (days).
        base = min(self.max_s, self.initial_s * 2 ** min(self.attempt - 1, 64))
        return float(base * rng.uniform(0.5, 1.0))  # jitter: sites that lost the cloud together do not retry together

    def reset(self) -> None:
        self.attempt = 0


class Delivery:
    def __init__(self, sink: Sink, outbox: Outbox, clock: Clock, *, batch_size: int, backoff_max_s: float,
                 alert: Alert, counters: SinkCounters, run: Run | None = None,
                 rng: random.Random | None = None, backoff_initial_s: float = 1.0,
                 outage_alert_after_s: float | None = None) -> None:
        self.sink = sink
        self.outbox = outbox
        self.clock = clock
        self.max_batch = batch_size
        self.batch_size = batch_size
        self.backoff = BackoffState(backoff_initial_s, backoff_max_s)
        self.backoff_max_s = backoff_max_s
        self.alert = alert
        self.counters = counters
        self.counters.batch_size = batch_size
        self._run: Run = run or asyncio.to_thread
        self._rng = rng or random.Random()
        self._ok_streak = 0
        self._alerted: ErrorKind | None = None
        self.outage_alert_after_s = outage_alert_after_s  # None: the backlog is not alerted (backfill)
        self.pending_rows: int | None = None  # rows pending for the sink after the last step (None: none yet)

    async def deliver_once(self, limit: int | None = None) -> int:
        """Send the next batch (of at most `limit` rows). Returns rows delivered (0: nothing pending). Raises
        SinkError on failure."""
        name = self.sink.name
        size = self.batch_size if limit is None else min(limit, self.batch_size)
        rows: list[StoredRow] = await self._run(lambda: self.outbox.pending(name, size))
        if not rows:
            return 0
        await self._send(rows)
        await self._run(lambda: self.outbox.ack(name, rows[-1].seq))
        self.counters.rows_uploaded += len(rows)
        return len(rows)

    async def step(self, limit: int | None = None) -> tuple[int, float]:
        """One delivery attempt with failure handling: (rows delivered, seconds to wait before the next)."""
        try:
            n = await self.deliver_once(limit)
        except SinkError as exc:
            delay = self._on_failure(exc)
            await self._watch_backlog()
            return 0, delay
        if self._alerted is not None:
            self.alert("upload_recovered", "Info", f"uploads to {self.sink.name} work again", sink=self.sink.name)
            self._alerted = None
        self.backoff.reset()
        await self._watch_backlog()
        return n, 0.0

    async def _watch_backlog(self) -> None:
        """Alert once when the oldest row pending here is older than `outage_alert_after_s`, Info once it is not.

        Transient failures are only logged (each retry would otherwise be an alert): without this, hours of
        cloud outage raised nothing an operator sees. Measured on the clock, after every attempt, so the
        alert is at most one retry pause late."""
        name = self.sink.name
        rows, oldest = await self._run(lambda: self.outbox.backlog(name))
        self.pending_rows = rows
        limit = self.outage_alert_after_s
        if limit is None:
            return
        age_s = 0.0 if oldest is None else max(0.0, (self.clock.now() - oldest).total_seconds())
        c = self.counters
        if age_s > limit and not c.backlog_alerted and oldest is not None:
            c.backlog_alerted = True
            log.error("upload_backlog", sink=name, age_s=round(age_s, 1), rows=rows, oldest=oldest.isoformat(),
                      limit_s=limit, last_error=c.last_error)
            self.alert("upload_backlog", "Error",
                       f"{name} is {_duration(age_s)} behind: {rows} rows wait, the oldest from {oldest.isoformat()}",
                       sink=name, age_s=round(age_s, 1), rows=rows, oldest=oldest.isoformat(), limit_s=limit,
                       last_error=c.last_error)
        elif age_s <= limit and c.backlog_alerted:
            c.backlog_alerted = False
            log.info("upload_backlog_cleared", sink=name, age_s=round(age_s, 1), rows=rows)
            self.alert("upload_backlog_cleared", "Info", f"{name} has caught up: {rows} rows wait",
                       sink=name, age_s=round(age_s, 1), rows=rows, limit_s=limit)

    # --- sending --------------------------------------------------------------------------------

    async def _send(self, rows: Sequence[StoredRow]) -> None:
        # One request per table, in outbox order within each table.
        by_table: dict[str, list[StoredRow]] = {}
        for r in rows:
            by_table.setdefault(r.table, []).append(r)
        for table, group in by_table.items():
            await self._send_table(table, group)

    async def _send_table(self, table: str, rows: Sequence[StoredRow]) -> None:
        t0 = time.monotonic()
        try:
            await self.sink.upload_bodies(table, [r.body for r in rows])
        except SinkError as exc:
            self._count_failure(exc)
            if exc.kind is ErrorKind.BAD_ROW:
                await self._bisect(table, rows, exc)
                return
            if exc.kind is ErrorKind.TOO_LARGE and len(rows) > 1:
                self.batch_size = max(1, min(self.batch_size, len(rows)) // 2)
                self.counters.batch_size = self.batch_size
                log.warning("upload_batch_halved", sink=self.sink.name, batch_size=self.batch_size)
                mid = len(rows) // 2
                await self._send_table(table, rows[:mid])
                await self._send_table(table, rows[mid:])
                return
            raise
        self._count_success(time.monotonic() - t0)

    async def _bisect(self, table: str, rows: Sequence[StoredRow], exc: SinkError) -> None:
        """Split a refused batch until the refused rows are alone; those go to quarantine, the rest up."""
        if len(rows) == 1:
            row = rows[0]
            await self._run(lambda: self.outbox.quarantine(self.sink.name, row, exc.detail))
            self.counters.rows_quarantined += 1
            log.error("upload_row_quarantined", sink=self.sink.name, table=table, key=row.key,
                      time=row.time.isoformat(), error=exc.detail)
            self.alert("upload_row_quarantined", "Error",
                       f"{self.sink.name} refused one {table} row; it is kept in quarantine",
                       sink=self.sink.name, table=table, key=row.key, time=row.time.isoformat(), error=exc.detail)
            return
        mid = len(rows) // 2
        await self._send_table(table, rows[:mid])
        await self._send_table(table, rows[mid:])

    # --- accounting -----------------------------------------------------------------------------

    def _count_success(self, latency_s: float) -> None:
        c = self.counters
        c.successes += 1
        c.latency_sum_s += latency_s
        c.latency_count += 1
        c.last_success = self.clock.now()
        self._ok_streak += 1
        if self.batch_size < self.max_batch and self._ok_streak >= 10:
            self.batch_size = min(self.max_batch, self.batch_size * 2)
            c.batch_size = self.batch_size
            self._ok_streak = 0

    def _count_failure(self, exc: SinkError) -> None:
        c = self.counters
        c.failures += 1
        c.last_error = exc.detail
        c.last_error_kind = exc.kind.value
        c.errors_by_kind[exc.kind.value] = c.errors_by_kind.get(exc.kind.value, 0) + 1
        self._ok_streak = 0

    def _on_failure(self, exc: SinkError) -> float:
        """Seconds to wait after a failed attempt; configuration problems are alerted once per episode."""
        if exc.kind is ErrorKind.TRANSIENT or exc.kind is ErrorKind.TOO_LARGE:
            delay = self.backoff.next_delay(self._rng)
            log.warning("upload_failed", sink=self.sink.name, kind=exc.kind.value, error=exc.detail,
                        retry_in_s=round(delay, 2))
            return delay
        messages = {
            ErrorKind.AUTH: "the cloud refuses our credentials (expired or wrong key?); readings are kept",
            ErrorKind.CONFLICT: "the cloud reports a conflict: the conflict target does not match the table",
            ErrorKind.CONFIG: "the cloud refuses the request or the connection settings (DSN, database, schema, "
                              "table or conflict handling); readings are kept",
        }
        log.error("upload_failed", sink=self.sink.name, kind=exc.kind.value, error=exc.detail,
                  retry_in_s=self.backoff_max_s)
        if self._alerted is not exc.kind:
            self.alert(f"upload_{exc.kind.value}_error", "Error", messages.get(exc.kind, exc.detail),
                       sink=self.sink.name, error=exc.detail, status=exc.status, code=exc.code)
            self._alerted = exc.kind
        return self.backoff_max_s


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"
