"""Histories built from a function of local time, for hand-computable forecasts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from controller.engine.schedule import zone
from controller.engine.settlement import SP_S, gb_midnight
from controller.forecast.rows import PeriodRow

TZ = zone("Europe/London")
KwOf = Callable[[datetime], float | None]  # local start -> kW (None = no row)


def rows_from(net_kw: KwOf, first: date, days: int, price: KwOf | None = None,
              solar_kw: KwOf | None = None) -> list[PeriodRow]:
    """One row per settlement period of `days` local days from `first`; net load split into import
    and export (battery idle)."""
    out = []
    t, end = gb_midnight(first), gb_midnight(first + timedelta(days=days))
    while t < end:
        local = t.astimezone(TZ)
        kw = net_kw(local)
        if kw is not None:
            pv = solar_kw(local) if solar_kw else None
            out.append(PeriodRow(t, max(kw, 0) / 2, max(-kw, 0) / 2, 0.0, 0.0, 500.0,
                                 None if pv is None else pv / 2, price(local) if price else None, 0.0))
        t += timedelta(seconds=SP_S)
    return out


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
