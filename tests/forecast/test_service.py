"""The daemon component on a manual clock: a period's readings and decisions become a stored row at
the boundary, a late price reaches its row, and a forecast is published on the bus each period."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest

from controller.core.bus import Bus, DecisionRecord
from controller.core.clock import ManualClock
from controller.core.forecast import NET_LOAD, PRICE
from controller.core.reading import Reading
from controller.forecast.history import HistoryStore
from controller.forecast.service import ForecastService, MeterIds
from tests.forecast.helpers import rows_from

SITE, BESS, BMETER = UUID(int=1), UUID(int=2), UUID(int=3)
T0 = datetime(2026, 6, 1, 11, 0, tzinfo=UTC)


def decision(t: datetime, price_sp: datetime, price: float) -> DecisionRecord:
    return DecisionRecord(t, {"target_kw": -40.0, "effective_modes": ["niv_chase"], "inputs": {
        "imbalance_price": {"value": price, "settlement_period": price_sp.isoformat()},
        "imbalance_volume": {"value": -50.0, "settlement_period": price_sp.isoformat()}}})


async def test_records_each_period_and_publishes(tmp_path: object) -> None:
    store = HistoryStore.open(str(tmp_path))
    store.put((r, None) for r in rows_from(lambda t: 60.0, date(2026, 5, 4), 28, price=lambda t: 8.0))
    clock, bus = ManualClock(T0), Bus()
    published = bus.forecasts.subscribe()
    service = ForecastService(store, clock, bus, MeterIds(SITE, BESS, BMETER), publish=bus.forecasts.publish)
    task = asyncio.create_task(service.run())
    try:
        first = await asyncio.wait_for(published.get(), 30)
        assert first.made_at == T0 and first.periods[0].start == T0
        assert first.periods[0].values[NET_LOAD].value == pytest.approx(60.0)
        for i in range(30):
            t = T0 + timedelta(minutes=i)
            bus.readings.publish(Reading(SITE, "site-meter", "acuvim2", t, {"power_total_active": 20.0}))
            bus.readings.publish(Reading(BMETER, "bess-meter", "acuvim2", t, {"power_total_active": -40.0}))
            bus.readings.publish(Reading(BESS, "bess", "powerpack", t, {"soe_kwh": 600.0 + i}))
        # The price of 11:00 is seen only after the period, at 11:31.
        bus.decisions.publish(decision(T0 + timedelta(minutes=10), T0 - timedelta(minutes=30), 7.0))
        await clock.advance(31 * 60)
        bus.decisions.publish(decision(T0 + timedelta(minutes=31), T0, 9.5))
        second = await asyncio.wait_for(published.get(), 30)
        assert second.periods[0].start == T0 + timedelta(minutes=30)
        row = store.rows()[-1]
        assert row.period_start == T0
        assert row.site_import_kwh == pytest.approx(10.0) and row.battery_charge_kwh == pytest.approx(20.0)
        assert row.net_load_kwh() == pytest.approx(-10.0)  # 20 kW at the meter, 40 of it into the battery
        assert row.soe_end_kwh == 629.0 and row.imbalance_price_p_per_kwh is None
        await clock.advance(30 * 60)
        third = await asyncio.wait_for(published.get(), 30)
        stored = {r.period_start: r for r in store.rows(T0)}
        assert stored[T0].imbalance_price_p_per_kwh == 9.5  # came late, reached its row
        assert third.periods[0].values[PRICE].lower <= third.periods[0].values[PRICE].upper
        assert service.counts["forecasts"] == 3 and service.counts["forecast_failures"] == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.close()


LIVE_CASES = [
    # (why, when the decision carrying the price is seen (minutes in), the price's period (minutes from
    #  T0), when the live forecast is published (minutes in, None: not before the boundary))
    ("the running period's price, seen early: used once the engine trusts it", 2, 0, 10.0),
    ("seen late: used at the next look", 14, 0, 14 + 1 / 3),
    ("only the last ended period's price: no live forecast", 2, -30, None),
]


@pytest.mark.parametrize(("why", "seen_min", "sp_min", "published_min"), LIVE_CASES, ids=[c[0] for c in LIVE_CASES])
async def test_a_live_price_refreshes_the_forecast_inside_the_period(
        tmp_path: object, why: str, seen_min: float, sp_min: float, published_min: float | None) -> None:
    store = HistoryStore.open(str(tmp_path))
    store.put((r, None) for r in rows_from(lambda t: 60.0, date(2026, 5, 4), 28, price=lambda t: 8.0))
    clock, bus = ManualClock(T0), Bus()
    published = bus.forecasts.subscribe()
    service = ForecastService(store, clock, bus, MeterIds(SITE, BESS, BMETER), publish=bus.forecasts.publish)
    task = asyncio.create_task(service.run())
    try:
        first = await asyncio.wait_for(published.get(), 30)
        assert first.made_at == T0
        await clock.advance(seen_min * 60)
        bus.decisions.publish(decision(clock.now(), T0 + timedelta(minutes=sp_min), 31.5))
        await clock.advance(29 * 60 - seen_min * 60)  # to 11:29, before the boundary
        if published_min is None:
            await asyncio.sleep(0.5)
            assert published.empty() and service.counts["live_price_forecasts"] == 0
        else:
            live = await asyncio.wait_for(published.get(), 30)  # forecast in a thread: real time
            assert live.made_at == T0 + timedelta(seconds=round(published_min * 60))
            p0 = live.periods[0].values[PRICE]
            assert live.periods[0].start == T0 and (p0.value, p0.lower, p0.upper) == (31.5, 31.5, 31.5)
            assert service.counts["live_price_forecasts"] == 1 and published.empty()  # once a period
        await clock.advance(2 * 60)
        after = await asyncio.wait_for(published.get(), 30)
        assert after.periods[0].start == T0 + timedelta(minutes=30)  # the boundary's forecast as before
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.close()
