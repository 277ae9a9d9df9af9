"""The planner's own stand-in forecast until `controller.forecast` lands: plain persistence.

`persistence_forecast` answers, per period of the horizon, the net load of the same period last week
(else yesterday, else the latest known) and the imbalance price of the same half-hour: the median over the
last `PRICE_DAYS` days that have it (else the latest known), from history rows known at `at` (a period is
known once it has ended). A median, not yesterday's value nor a mean, because one day's imbalance price is
mostly noise the plan would trade on, and a mean turns one day's spike into a phantom one every day
(measured with the backtest, bench/README.md). The latest known price's departure from that median
carries over to the next periods, shrinking by the lag-1 autocorrelation of those
departures in the known history each half-hour (an AR(1) correction: the imbalance price of the next hour
is much more like the last one than like the average day). Its intervals are the values themselves: it
claims no spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta

from controller.core.forecast import NET_LOAD, PRICE, Band, Forecast, PeriodForecast
from controller.engine.settlement import SP
from controller.planner.history import HistoryRow

NAME = "persistence"
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
PRICE_DAYS = 7


def persistence_forecast(history: Sequence[HistoryRow], at: datetime, starts: Sequence[datetime]) -> Forecast:
    known = [r for r in history if r.start + SP <= at]
    loads = {r.start: r.net_load_kw for r in known if r.net_load_kw is not None}
    prices = {r.start: r.price_p_per_kwh for r in known if r.price_p_per_kwh is not None}
    latest_load = next((r.net_load_kw for r in reversed(known) if r.net_load_kw is not None), None)
    latest_price = next((r.price_p_per_kwh for r in reversed(known) if r.price_p_per_kwh is not None), None)
    rho, last_dev, last_t = _price_persistence(prices)
    periods = []
    latest_used = {NET_LOAD: 0, PRICE: 0}
    for start in starts:
        values: dict[str, Band] = {}
        load = _back(loads, start, (_WEEK, 2 * _WEEK, _DAY), None)
        price = _daily_median(prices, start)
        if price is not None and last_t is not None:
            ahead = max(round((start - last_t) / SP), 1)
            price += last_dev * rho ** ahead
        if load is None and latest_load is not None:
            load, latest_used[NET_LOAD] = latest_load, latest_used[NET_LOAD] + 1
        if price is None and latest_price is not None:
            price, latest_used[PRICE] = latest_price, latest_used[PRICE] + 1
        if load is not None:
            values[NET_LOAD] = Band.exact(load)
        if price is not None:
            values[PRICE] = Band.exact(price)
        periods.append(PeriodForecast(start, values))
    notes = tuple(f"{q}: {k} of {len(starts)} periods have no same-time value in the history: the latest known "
                  f"value assumed" for q, k in latest_used.items() if k)
    return Forecast(at, tuple(periods), {NET_LOAD: NAME, PRICE: NAME}, notes)


def _price_persistence(prices: dict[datetime, float]) -> tuple[float, float, datetime | None]:
    """(lag-1 autocorrelation of the departures from the daily median, clamped to 0..0.95; the newest
    departure; its period), over the last two weeks known."""
    if not prices:
        return 0.0, 0.0, None
    newest = max(prices)
    recent = sorted(t for t in prices if t > newest - 2 * _WEEK)
    dev: dict[datetime, float] = {}
    for t in recent:
        mean = _daily_median(prices, t + _DAY, before=t)
        if mean is not None:
            dev[t] = prices[t] - mean
    pairs = [(dev[t], dev[t + SP]) for t in dev if t + SP in dev]
    if newest not in dev or len(pairs) < 10:
        return 0.0, 0.0, newest
    num = sum(a * b for a, b in pairs)
    den = sum(a * a for a, _ in pairs)
    rho = min(max(num / den, 0.0), 0.95) if den > 0 else 0.0
    return rho, dev[newest], newest


def _daily_median(series: dict[datetime, float], start: datetime, before: datetime | None = None) -> float | None:
    """The median over the last PRICE_DAYS days of the half-hour of `start`, from values up to `before`
    (default: all of `series`)."""
    if not series:
        return None
    newest = max(series) if before is None else before
    t = start - _DAY
    while t > newest:
        t -= _DAY
    seen = [series[t - k * _DAY] for k in range(PRICE_DAYS) if t - k * _DAY in series]
    return statistics.median(seen) if seen else None


def _back(series: dict[datetime, float], start: datetime, lags: tuple[timedelta, ...],
          latest: float | None) -> float | None:
    if not series:
        return latest
    newest = max(series)
    for lag in lags:
        # A lag landing after the newest known period (inside the horizon) steps back by whole lags.
        t = start - lag
        while t > newest:
            t -= lag
        if t in series:
            return series[t]
    return latest
