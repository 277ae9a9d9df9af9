"""A large backlog is uploaded by a short-lived child process, so the daemon's memory stays at its steady size.

Uploading a week's backlog (a million rows) in the daemon left it 2.4-3.9 MiB above its steady RSS for good:
the live objects were back to what they were (tracemalloc), but CPython's arenas and glibc's heap kept the
pages the batches had fragmented, and `malloc_trim` returns only whole free pages. A child does the same
work with the same code (`Delivery`, the sink) on its own connection to the outbox, and its memory goes
back to the system when it exits.

Nothing changes about what the cloud receives: the child reads the sink's pending rows in outbox order,
sends them, and moves the sink's cursor after each batch in the outbox's own transactions (WAL: the
daemon's writer keeps committing meanwhile; the row counts are kept by the file's triggers, so status and
metrics follow the child's acks). A child killed at any point leaves the cursor at its last acknowledged
batch; the daemon sends the rest (again, idempotently, for a batch in flight).

The child stops at the first failure or once less than a batch is pending, and reports what it did on
stdout as one JSON object; its logs go to the daemon's stderr. The daemon adds its figures to the sink's
counters, raises the alerts it collected, and carries on in-process, where failures are handled as ever.

The child (`python -m uploader.drain_child`) holds the site's config as records, as the daemon does
(controller.core.records): it loads neither pydantic nor anything of the application beyond the uploader.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.core.logs import get_logger, redactions
from controller.core.process import child_env
from uploader.config import PostgresSinkConfig, PostgrestSinkConfig
from uploader.delivery import Alert, SinkCounters
from uploader.site import UploaderSite, buffer_dir

log = get_logger("uploader")
SECRET = "__secret__"
MAX_ALERTS = 100  # a child that quarantines row after row reports this many alerts; the rest are counted


@dataclass
class DrainResult:
    """What one child did: the parent adds it to the sink's counters."""

    rows: int = 0
    successes: int = 0
    failures: int = 0
    latency_sum_s: float = 0.0
    latency_count: int = 0
    quarantined: int = 0
    batch_size: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # the failure that stopped it (None: it caught up)
    error_kind: str | None = None
    alerts: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    alerts_dropped: int = 0


def _field(value: Any) -> Any:
    # A secret (pydantic's SecretStr or the records') travels as its value, marked so the child wraps it again.
    reveal = getattr(value, "get_secret_value", None)
    return {SECRET: reveal()} if callable(reveal) else value


def request(site: UploaderSite, sink: PostgrestSinkConfig | PostgresSinkConfig, batch_size: int) -> bytes:
    """The child's request: the sink's config as its class and fields (a validated model or the daemon's record,
    both keep their fields in `__dict__`), secrets included, so it goes through a pipe, never argv or a file."""
    b = site.buffer
    return json.dumps({
        "outbox": {"dir": str(buffer_dir(site)), "synchronous": b.synchronous, "max_bytes": b.max_bytes,
                   "retention_s": b.retention_days * 86400.0},
        "sink": {"module": type(sink).__module__, "class": type(sink).__qualname__,
                 "fields": {k: _field(v) for k, v in vars(sink).items()}},
        "batch_size": batch_size,
        "redactions": sorted(redactions()),
    }).encode()


async def drain_in_child(site: UploaderSite, sink: PostgrestSinkConfig | PostgresSinkConfig, batch_size: int,
                         counters: SinkCounters) -> DrainResult | None:
    """Run one child until it stops; None if it died without an answer (killed, crashed). Cancelling this
    kills the child first: a reload or a stop never leaves one uploading behind the daemon's back."""
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "uploader.drain_child", stdin=pipe, stdout=pipe,
                                                env=child_env())
    counters.drain_pid = proc.pid
    try:
        out, _ = await proc.communicate(request(site, sink, batch_size))
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    finally:
        counters.drain_pid = None
    if proc.returncode != 0:
        log.error("upload_child_failed", sink=sink.name, returncode=proc.returncode)
        return None
    try:
        answer = json.loads(out)
        answer["alerts"] = [tuple(a) for a in answer.get("alerts", [])]
        return DrainResult(**answer)
    except (ValueError, TypeError) as exc:
        log.error("upload_child_unreadable", sink=sink.name, error=str(exc))
        return None


def add_to_counters(result: DrainResult, counters: SinkCounters, alert: Alert, now: datetime) -> None:
    """A child's figures into the sink's counters, its alerts raised from the daemon."""
    c = counters
    c.child_drains += 1
    if result.successes:
        c.last_success = now
    c.child_rows += result.rows
    c.rows_uploaded += result.rows
    c.successes += result.successes
    c.failures += result.failures
    c.latency_sum_s += result.latency_sum_s
    c.latency_count += result.latency_count
    c.rows_quarantined += result.quarantined
    for kind, n in result.errors_by_kind.items():
        c.errors_by_kind[kind] = c.errors_by_kind.get(kind, 0) + n
    if result.error is not None:
        c.last_error, c.last_error_kind = result.error, result.error_kind
    for kind, level, message, data in result.alerts:
        alert(kind, level, message, **data)
    if result.alerts_dropped:
        log.warning("upload_child_alerts_dropped", alerts=result.alerts_dropped)
