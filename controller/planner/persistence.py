"""The planner's own stand-in forecast until `controller.forecast` lands: plain persistence.

`persistence_forecast` answers, per period of the horizon, the net load of the same period last week
(else yesterday, else the latest known) and the imbalance price of the same period yesterday (else last
week, else the latest known), from history rows known at `at` (a period is known once it has ended).
Its intervals are the values themselves: it claims no spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from controller.core.forecast import NET_LOAD, PRICE, Band, Forecast, PeriodForecast
from controller.engine.settlement import SP
from controller.planner.history import HistoryRow

NAME = "persistence"
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


def persistence_forecast(history: Sequence[HistoryRow], at: datetime, starts: Sequence[datetime]) -> Forecast:
    known = [r for r in history if r.start + SP <= at]
    loads = {r.start: r.net_load_kw for r in known if r.net_load_kw is not None}
    prices = {r.start: r.price_p_per_kwh for r in known if r.price_p_per_kwh is not None}
    latest_load = next((r.net_load_kw for r in reversed(known) if r.net_load_kw is not None), None)
    latest_price = next((r.price_p_per_kwh for r in reversed(known) if r.price_p_per_kwh is not None), None)
    periods = []
    latest_used = {NET_LOAD: 0, PRICE: 0}
    for start in starts:
        values: dict[str, Band] = {}
        load = _back(loads, start, (_WEEK, 2 * _WEEK, _DAY), None)
        price = _back(prices, start, (_DAY, _WEEK, 2 * _DAY), None)
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
