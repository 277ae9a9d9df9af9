"""The daemon side of forecasting: every settlement period's readings and decisions become one row
of the local history, and at every period boundary the forecasts are refreshed and published.

`Recorder` is synchronous and clock-free (fed readings, decisions and "now"); `ForecastService.run`
is the component: it drains its bus queues, and at each boundary (on the injected clock) closes the
periods that ended, stores them, rebuilds the forecast from the stored history and publishes it.
Once more inside each period: when the market client has published the running period's imbalance
price (Modo's live price, seen in the decisions) and the engine would trust it (from
`CURRENT_SP_TRUSTED_AFTER_S` into the period, modes.md), the forecast is rebuilt with that price as
the period's own and the nowcast starting from it; the planner re-plans on the new forecast.
A failing forecast is logged and counted, never raised: the rows are stored first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from controller.core.bus import Bus, DecisionRecord
from controller.core.clock import Clock
from controller.core.forecast import Forecast
from controller.core.logs import get_logger
from controller.core.reading import Reading
from controller.engine.prediction import CURRENT_SP_TRUSTED_AFTER_S
from controller.engine.settlement import SP, current_sp_start
from controller.forecast.forecasters import HISTORY_DAYS_USED, forecast_site
from controller.forecast.history import ControllerPeriod, HistoryStore, PeriodAccumulator
from controller.forecast.rows import PeriodRow
from controller.forecast.series import History

log = get_logger("controller.forecast.service")

LATE_PRICE_PERIODS = 4  # a price published this many periods late still reaches its row
LIVE_POLL_S = 20.0  # how often, once the running period's price may be trusted, it is looked for


@dataclass(frozen=True)
class MeterIds:
    site_meter: UUID
    battery: UUID | None = None
    battery_meter: UUID | None = None
    solar_meter: UUID | None = None


@dataclass
class Recorder:
    """Readings and decisions -> one `PeriodAccumulator` per open settlement period."""

    ids: MeterIds
    open: dict[datetime, PeriodAccumulator] = field(default_factory=dict)
    prices: dict[datetime, tuple[float | None, float | None]] = field(default_factory=dict)
    closed: dict[datetime, tuple[PeriodRow, ControllerPeriod]] = field(default_factory=dict)

    def _acc(self, t: datetime) -> PeriodAccumulator:
        start = current_sp_start(t)
        acc = self.open.get(start)
        if acc is None:
            acc = self.open[start] = PeriodAccumulator(
                start, site_meter=self.ids.site_meter, battery=self.ids.battery,
                battery_meter=self.ids.battery_meter, solar_meter=self.ids.solar_meter)
        return acc

    def reading(self, r: Reading) -> None:
        if r.device_id in (self.ids.site_meter, self.ids.battery, self.ids.battery_meter, self.ids.solar_meter):
            self._acc(r.time).feed(r)

    def decision(self, d: DecisionRecord) -> None:
        body = d.body
        target = body.get("target_kw")
        if isinstance(target, int | float):
            self._acc(d.time).note_decision(float(target), [str(m) for m in body.get("effective_modes") or ()])
        inputs = body.get("inputs") or {}
        price, volume = _market(inputs.get("imbalance_price")), _market(inputs.get("imbalance_volume"))
        for sp, value, slot in ((price[0], price[1], 0), (volume[0], volume[1], 1)):
            if sp is not None:
                old = self.prices.get(sp, (None, None))
                self.prices[sp] = (value, old[1]) if slot == 0 else (old[0], value)

    def live_price(self, now: datetime) -> float | None:
        """The running period's published imbalance price, once the engine would trust it; else None."""
        start = current_sp_start(now)
        if (now - start).total_seconds() < CURRENT_SP_TRUSTED_AFTER_S:
            return None
        return self.prices.get(start, (None, None))[0]

    def roll(self, now: datetime) -> list[tuple[PeriodRow, ControllerPeriod]]:
        """Rows to store: every period that ended by `now`, and recent rows whose price came late."""
        current = current_sp_start(now)
        out: list[tuple[PeriodRow, ControllerPeriod]] = []
        for start in sorted(s for s in self.open if s < current):
            acc = self.open.pop(start)
            price, volume = self.prices.get(start, (None, None))
            acc.note_market(price, volume)
            row, did = acc.close()
            self.closed[start] = (row, did)
            out.append((row, did))
        for start, (row, did) in list(self.closed.items()):
            price, volume = self.prices.get(start, (None, None))
            if (row.imbalance_price_p_per_kwh is None and price is not None) or (
                    row.imbalance_volume_mwh is None and volume is not None):
                fixed = replace(
                    row, imbalance_price_p_per_kwh=price if row.imbalance_price_p_per_kwh is None
                    else row.imbalance_price_p_per_kwh,
                    imbalance_volume_mwh=volume if row.imbalance_volume_mwh is None else row.imbalance_volume_mwh)
                self.closed[start] = (fixed, did)
                if all(r.period_start != start for r, _ in out):
                    out.append((fixed, did))
                else:
                    out = [(fixed, did) if r.period_start == start else (r, d) for r, d in out]
        horizon = current - LATE_PRICE_PERIODS * SP
        for start in [s for s in self.closed if s < horizon]:
            del self.closed[start]
        for start in [s for s in self.prices if s < horizon]:
            del self.prices[start]
        return out


def _market(v: Any) -> tuple[datetime | None, float | None]:
    if not isinstance(v, Mapping) or not isinstance(v.get("value"), int | float):
        return None, None
    try:
        sp = datetime.fromisoformat(str(v.get("settlement_period"))).astimezone(UTC)
    except ValueError:
        return None, None
    return sp, float(v["value"])


class ForecastService:
    def __init__(self, store: HistoryStore, clock: Clock, bus: Bus, ids: MeterIds, *, horizon: int = 48,
                 publish: Callable[[Forecast], None] | None = None) -> None:
        self.store, self.clock, self.bus, self.horizon = store, clock, bus, horizon
        self.recorder = Recorder(ids)
        self.publish = publish
        self.latest: Forecast | None = None
        self.counts = {"periods_stored": 0, "forecasts": 0, "forecast_failures": 0, "live_price_forecasts": 0}

    def refresh(self, now: datetime, live_price: float | None = None) -> Forecast | None:
        """Store what ended by `now`, then forecast from the stored history (synchronous); `live_price`:
        the running period's published price."""
        return self._announce(self._store_and_forecast(self.recorder.roll(now), now, live_price))

    def _store_and_forecast(self, rows: list[tuple[PeriodRow, ControllerPeriod]],
                            now: datetime, live_price: float | None = None) -> tuple[Forecast | None, int]:
        if rows:
            self.store.put(rows)
            self.counts["periods_stored"] += len(rows)
        try:
            history = History.from_rows(self.store.rows(now - timedelta(days=HISTORY_DAYS_USED)))
            return forecast_site(history, now, self.horizon, live_price=live_price), len(rows)
        except Exception as exc:  # a forecast is advice: never let it stop the recording
            self.counts["forecast_failures"] += 1
            log.error("forecast_failed", error=repr(exc))
            return None, len(rows)

    def _announce(self, result: tuple[Forecast | None, int]) -> Forecast | None:
        forecast, stored = result
        if forecast is None:
            return None
        self.latest = forecast
        self.counts["forecasts"] += 1
        log.info("forecast_refreshed", at=forecast.made_at.isoformat(), forecasters=dict(forecast.forecasters),
                 notes=list(forecast.notes), periods_stored=stored)
        if self.publish is not None:
            self.publish(forecast)
        return forecast

    async def _refresh_async(self, live_price: float | None = None) -> None:
        # Rolling touches what the drain tasks feed: on the loop. Storing and forecasting (~0.1 s)
        # go to a thread so the control loop's tick is not held up; publishing is back on the loop.
        now = self.clock.now()
        rows = self.recorder.roll(now)
        self._announce(await asyncio.to_thread(self._store_and_forecast, rows, now, live_price))
        if live_price is not None:
            self.counts["live_price_forecasts"] += 1

    async def _until_next_period(self) -> None:
        """Sleep to just after the next boundary; on the way, once the running period's price may be
        trusted, refresh once with it (looked for every LIVE_POLL_S: Modo may publish it late)."""
        start = current_sp_start(self.clock.now())
        boundary = start + SP + timedelta(seconds=5)  # so the last readings of the period have arrived
        wake = start + timedelta(seconds=CURRENT_SP_TRUSTED_AFTER_S)
        while wake < start + SP:
            await self.clock.sleep_until(wake)
            await asyncio.sleep(0)
            now = self.clock.now()
            if current_sp_start(now) != start:
                break
            live = self.recorder.live_price(now)
            if live is not None:
                await self._refresh_async(live)
                break
            wake = now + timedelta(seconds=LIVE_POLL_S)
        await self.clock.sleep_until(boundary)

    async def run(self) -> None:
        readings, decisions = self.bus.readings.subscribe(), self.bus.decisions.subscribe()

        async def drain_readings() -> None:
            while True:
                self.recorder.reading(await readings.get())

        async def drain_decisions() -> None:
            while True:
                self.recorder.decision(await decisions.get())

        tasks = [asyncio.create_task(drain_readings()), asyncio.create_task(drain_decisions())]
        try:
            await self._refresh_async()  # forecasts from the stored history at once
            while True:
                await self._until_next_period()
                await asyncio.sleep(0)
                await self._refresh_async()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            self.bus.readings.unsubscribe(readings)
            self.bus.decisions.unsubscribe(decisions)


def replay(store: HistoryStore, ids: MeterIds, records: Iterable[Reading | DecisionRecord], until: datetime) -> int:
    """Rebuild the history from retained records (the outbox's, when the history file was lost).

    `records` in time order; each settlement period is closed as the records pass its end, as the
    running recorder would have closed it. Returns the number of periods stored.
    """
    recorder = Recorder(ids)
    stored = 0
    for item in records:
        if isinstance(item, Reading):
            recorder.reading(item)
        else:
            recorder.decision(item)
        rows = recorder.roll(item.time)
        if rows:
            stored += store.put(rows, source="outbox")
    rows = recorder.roll(until)
    if rows:
        stored += store.put(rows, source="outbox")
    return stored
