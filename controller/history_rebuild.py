"""A lost local history, rebuilt from what the outbox still holds (its retained readings and decisions).

The history file and the outbox live side by side under the site's buffer directory; the outbox keeps
every row for `buffer.retention_days`, uploaded or not. When the history file is missing at start
(a new disk, a deleted file), the forecast component replays those rows through the same recorder
the running daemon uses, so the forecasts start from the site's own past instead of from nothing.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from controller.config.site import SiteConfig
from controller.core.bus import DecisionRecord
from controller.core.logs import get_logger
from controller.core.reading import FieldValue, Reading
from controller.forecast.history import HistoryStore
from controller.forecast.service import MeterIds, replay
from devices.catalog import CLOUD_ROUTING
from uploader.outbox import Outbox, outbox_path
from uploader.tables import DECISIONS

log = get_logger("history_rebuild")


def _readings(outbox: Outbox, config: SiteConfig, name: str, start: datetime, end: datetime) -> list[Reading]:
    device = config.device(name)
    route = CLOUD_ROUTING.get(device.type)
    if route is None:
        return []
    field_of = {column: field for field, column in route.columns.items()}
    out = []
    for row in outbox.rows_between(route.table, str(device.id), start, end):
        values = json.loads(row.body)
        fields: dict[str, FieldValue] = {field_of[c]: v for c, v in values.items() if c in field_of}
        out.append(Reading(device.id, device.name, device.type, row.time, fields, received_at=row.time))
    return out


def _decisions(outbox: Outbox, battery_key: str, start: datetime, end: datetime) -> list[DecisionRecord]:
    out = []
    for row in outbox.rows_between(DECISIONS.name, battery_key, start, end):
        body = json.loads(row.body).get("body")
        if isinstance(body, dict):
            out.append(DecisionRecord(row.time, body))
    return out


def outbox_records(outbox: Outbox, config: SiteConfig, start: datetime,
                   end: datetime) -> Iterator[Reading | DecisionRecord]:
    """The controller's meters' readings and the decision records held for [start, end), in time order."""
    c = config.controller
    if c is None:
        return iter(())
    names = [n for n in (c.site_meter, c.battery, c.battery_meter) if n is not None]
    streams: list[list[Reading] | list[DecisionRecord]] = [_readings(outbox, config, n, start, end) for n in names]
    streams.append(_decisions(outbox, str(config.device(c.battery).id), start, end))
    return heapq.merge(*streams, key=lambda item: item.time)


def rebuild_from_outbox(store: HistoryStore, directory: Path, config: SiteConfig, ids: MeterIds,
                        now: datetime) -> int:
    """Periods stored from the outbox's retained rows (0 when there is no outbox yet)."""
    if not outbox_path(directory).exists():
        return 0
    b = config.buffer
    outbox = Outbox.open(directory, synchronous=b.synchronous, max_bytes=b.max_bytes,
                         retention_s=b.retention_days * 86400.0)
    try:
        start = now - timedelta(days=b.retention_days)
        stored = replay(store, ids, outbox_records(outbox, config, start, now), now)
    finally:
        outbox.close()
    log.info("history_rebuilt_from_outbox", periods=stored, since=start.isoformat())
    return stored
