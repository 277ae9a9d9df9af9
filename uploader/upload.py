"""Uploads from the outbox to the sinks: one delivery loop per sink in the daemon, or everything at once.

Each sink's loop has its own connection to the outbox and its own cursor in it: a sink that is down
holds back only its own rows. The loop waits for the writer to have opened the store, reopens it
when the writer replaced a corrupt file, and registers the site's devices once the sink answers.
"""

from __future__ import annotations

import asyncio
import random
from functools import partial
from typing import Any

from controller.core.clock import Clock, wait_event
from controller.core.logs import get_logger
from controller.core.memory import give_back
from uploader.config import PostgresSinkConfig, PostgrestSinkConfig
from uploader.delivery import Alert, Delivery, SinkCounters
from uploader.drain import add_to_counters, drain_in_child
from uploader.factory import make_sink
from uploader.outbox import Outbox
from uploader.sink import SinkError
from uploader.site import UploaderSite, device_entries, reopen_outbox
from uploader.writer import OutboxService

log = get_logger("uploader")

# After delivering at least this many rows since the backlog was last empty, the memory the batches
# used is given back once the backlog is empty again (a week's backlog must not stay resident).
GIVE_BACK_AFTER_ROWS = 20_000
PROBE_ROWS = 10  # sent from the daemon before a large backlog is handed to a child (uploader/drain.py)


async def run_sink(site: UploaderSite, service: OutboxService, sink_config: PostgrestSinkConfig | PostgresSinkConfig,
                   *, clock: Clock, alert: Alert, counters: SinkCounters) -> None:
    """Deliver to one sink until cancelled; `counters` are the sink's, kept across restarts."""
    sink = make_sink(sink_config)
    wake = asyncio.Event()
    service.wakers.add(wake)
    outbox: Outbox | None = None
    try:
        registered = False
        next_registration = clock.monotonic()
        while True:
            await service.ready.wait()
            generation = service.generation
            outbox = await asyncio.to_thread(partial(reopen_outbox, site))
            delivery = Delivery(sink, outbox, clock, batch_size=sink_config.batch_size,
                                backoff_max_s=sink_config.backoff_max_s, alert=alert, counters=counters,
                                rng=random.Random(), outage_alert_after_s=sink_config.outage_alert_after_s)
            delivered = 0
            children = sink_config.child_drain_rows > 0
            while service.generation == generation and service.ready.is_set():
                # Cleared before the batch is read: a commit after the read sets it again, so a partial batch
                # below can tell "caught up" from "more arrived meanwhile".
                wake.clear()
                # With a large backlog (or none known yet: at start), a few rows only try whether the cloud
                # answers: one full batch read, encoded and sent here left the daemon's heap about 2 MiB larger
                # for good (bench/README.md).
                threshold = sink_config.child_drain_rows
                before = delivery.pending_rows
                size = (min(PROBE_ROWS, delivery.batch_size) if children and (before is None or before > threshold)
                        else delivery.batch_size)
                n, delay = await delivery.step(size)
                delivered += n
                caught_up = delay == 0 and n < size  # less than a full batch was pending
                after = delivery.pending_rows
                if caught_up and delivered >= GIVE_BACK_AFTER_ROWS:
                    give_back(f"backlog of {delivered} rows uploaded to {sink.name}")
                    delivered = 0
                if not registered and delay == 0 and clock.monotonic() >= next_registration:
                    try:
                        await sink.register_devices(device_entries(site))
                        registered = True
                    except SinkError as exc:
                        # Readings do not wait for the registry; it is tried again now and then.
                        next_registration = clock.monotonic() + sink_config.backoff_max_s
                        log.warning("device_registration_failed", sink=sink.name, error=exc.detail)
                if delay > 0:
                    await clock.sleep(delay)
                elif caught_up:
                    # Wait for the next commit and gather, rather than send at once what arrived during the
                    # last request (a few rows). Full batches (a backlog) go back to back.
                    await wait_event(wake, clock, sink_config.interval_s)
                    if wake.is_set() and sink_config.gather_s > 0:
                        # Woken by a commit: what the next few commits bring goes in the same requests.
                        await clock.sleep(sink_config.gather_s)
                    children = sink_config.child_drain_rows > 0
                elif children and after is not None and after > threshold:
                    # The cloud answers: the rest of the backlog goes from a child, whose memory is the
                    # system's again when it exits.
                    result = await drain_in_child(site, sink_config, delivery.batch_size, counters)
                    if result is None:  # died without an answer: this loop uploads until it has caught up
                        counters.child_failures += 1
                        children = False
                    else:
                        add_to_counters(result, counters, alert, clock.now())
            outbox.close()
            outbox = None
    finally:
        service.wakers.discard(wake)
        if outbox is not None:
            outbox.close()
        await sink.close()


async def deliver_all(site: UploaderSite, clock: Clock, all_counters: dict[str, SinkCounters]) -> dict[str, Any]:
    """Deliver everything pending to every sink now (for `backfill`): rows per sink, or the error that stopped it."""
    out: dict[str, Any] = {}
    outbox = await asyncio.to_thread(partial(reopen_outbox, site))
    try:
        for sc in site.uploader.sinks:
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
