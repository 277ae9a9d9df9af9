"""Timed import/export rates (p/kWh adders such as DUoS bands)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from controller.core.config import TimedRate
from controller.engine.schedule import window_at


def rate_now(rates: Iterable[TimedRate], now: datetime) -> float:
    """The sum of every rate whose periods cover `now` (bands stack, e.g. a red band on top of a flat adder)."""
    return sum((r.rate for r in rates if window_at(r.periods, now) is not None), 0.0)


def first_rate(rates: Iterable[TimedRate], now: datetime) -> float | None:
    """The first rate whose periods cover `now` (NIV chase's default pricing), or None."""
    for r in rates:
        if window_at(r.periods, now) is not None:
            return r.rate
    return None
