"""Today's numbers and the last alerts, kept by the daemon from the bus (no local history needed).

Energy charged/discharged (the battery meter, else the battery's own reported power), imported/exported
(the site meter), and their value at the imbalance price in force, integrated reading by reading since
local midnight or since the daemon started, whichever is later (`since` says which). A gap longer than
`MAX_GAP_S` between two readings is not bridged: what the daemon did not see is not counted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from controller.core.bus import Bus, Event
from controller.core.reading import Reading
from controller.engine.schedule import local_midnight, zone
from controller.engine.site_state import MarketValue

MAX_GAP_S = 300.0
ALERTS_KEPT = 20
POWER_FIELD = "power_total_active"


@dataclass
class Totals:
    since: datetime
    charged_kwh: float = 0.0
    discharged_kwh: float = 0.0
    imported_kwh: float = 0.0
    exported_kwh: float = 0.0
    battery_value_gbp: float = 0.0  # discharged x price - charged x price, at the imbalance price in force
    priced_kwh: float = 0.0  # battery energy that had a price to value it by
    from_midnight: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "from_midnight": self.from_midnight,
                "charged_kwh": round(self.charged_kwh, 3), "discharged_kwh": round(self.discharged_kwh, 3),
                "imported_kwh": round(self.imported_kwh, 3), "exported_kwh": round(self.exported_kwh, 3),
                "battery_value_gbp": round(self.battery_value_gbp, 2), "priced_kwh": round(self.priced_kwh, 3)}


@dataclass
class _Stream:
    time: datetime | None = None
    kw: float = 0.0


@dataclass
class SiteDay:
    """`runtime.services.today`. `sources()` names (site meter id, battery power id and field) from the
    live config; `price()` is the imbalance price in force."""

    timezone: str
    sources: Callable[[], tuple[UUID | None, UUID | None, str]]
    price: Callable[[], MarketValue | None] = lambda: None
    totals: Totals | None = None
    alerts: deque[Event] = field(default_factory=lambda: deque(maxlen=ALERTS_KEPT))
    _site: _Stream = field(default_factory=_Stream)
    _battery: _Stream = field(default_factory=_Stream)

    def _day(self, t: datetime) -> Totals:
        tz = zone(self.timezone)
        midnight = local_midnight(t.astimezone(tz).date(), tz)
        if self.totals is None:
            self.totals = Totals(since=t, from_midnight=t == midnight)
        elif self.totals.since < midnight:
            self.totals = Totals(since=midnight, from_midnight=True)
        return self.totals

    @staticmethod
    def _step(stream: _Stream, t: datetime, kw: float, since: datetime) -> float:
        """kWh since the stream's previous reading, at that reading's power (0 across a long gap, and for an
        interval that began before `since`: yesterday's energy is not today's)."""
        kwh = 0.0
        if stream.time is not None and stream.time >= since:
            dt = (t - stream.time).total_seconds()
            if 0 < dt <= MAX_GAP_S:
                kwh = stream.kw * dt / 3600.0
            elif dt <= 0:
                return 0.0
        stream.time, stream.kw = t, kw
        return kwh

    def observe(self, reading: Reading) -> None:
        site_id, battery_id, battery_field = self.sources()
        if reading.device_id not in (site_id, battery_id):
            return
        totals = self._day(reading.time)
        if reading.device_id == site_id:
            value = reading.fields.get(POWER_FIELD)
            if isinstance(value, int | float) and not isinstance(value, bool):
                kwh = self._step(self._site, reading.time, float(value), totals.since)
                if kwh > 0:
                    totals.imported_kwh += kwh
                else:
                    totals.exported_kwh -= kwh
        if reading.device_id == battery_id:
            value = reading.fields.get(battery_field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                kwh = self._step(self._battery, reading.time, float(value), totals.since)
                if kwh > 0:
                    totals.discharged_kwh += kwh
                else:
                    totals.charged_kwh -= kwh
                price = self.price()
                if price is not None and kwh != 0:
                    totals.battery_value_gbp += kwh * price.value / 100.0
                    totals.priced_kwh += abs(kwh)

    def alert(self, event: Event) -> None:
        self.alerts.append(event)

    def snapshot(self) -> dict[str, Any] | None:
        return None if self.totals is None else self.totals.to_json()

    def last_alerts(self, n: int = 5) -> list[dict[str, Any]]:
        return [{"time": e.time.isoformat(), "kind": e.kind, "level": e.level, "message": e.message}
                for e in list(self.alerts)[-n:]]

    async def run(self, bus: Bus) -> None:
        readings = bus.readings.subscribe()
        events = bus.events.subscribe()

        async def pump(queue: asyncio.Queue[Any], fn: Callable[[Any], None]) -> None:
            while True:
                fn(await queue.get())

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(pump(readings, self.observe))
                tg.create_task(pump(events, self.alert))
        finally:
            bus.readings.unsubscribe(readings)
            bus.events.unsubscribe(events)
