"""The running period's published imbalance price (Modo's live price) in the forecast: that period's
price is it, exactly, and the nowcast starts from it instead of from the last ended period.

The history is hand-built: every day has the same price shape plus a level of its own that holds all
day (so a departure seen now persists for the rest of the day, and the fitted nowcast carries it)."""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime

import pytest

from controller.core.forecast import NET_LOAD, PRICE
from controller.forecast.forecasters import SAME_PERIOD_7D, forecast_site
from controller.forecast.series import History
from tests.forecast.helpers import rows_from, utc

FIRST = date(2026, 6, 1)
AT = utc("2026-07-06T12:10:00+01:00")  # ten minutes into the 12:00 period


def price(t: datetime) -> float:
    level = (-2.0, 1.0, 3.0, -1.0, 0.0, 2.0, -3.0)[(t.date() - FIRST).days % 7]
    return 10.0 + 4.0 * math.sin(t.hour / 24 * 2 * math.pi) + level


def history() -> History:
    return History.from_rows([r for r in rows_from(lambda t: 40.0, FIRST, 36, price=price)
                              if r.period_start < utc("2026-07-06T12:00:00+01:00")])


CASES = [
    # (why, live price, period 0 exact at, next period vs. no live price: "up", "down", "same")
    ("no live price: as before", None, None, "same"),
    ("a live price far above the usual lifts the next periods", 30.0, 30.0, "up"),
    ("a live price far below lowers them", -5.0, -5.0, "down"),
    ("a non-finite live price is ignored", math.nan, None, "same"),
]


@pytest.mark.parametrize(("why", "live", "exact", "next_period"), CASES, ids=[c[0] for c in CASES])
def test_live_price(why: str, live: float | None, exact: float | None, next_period: str) -> None:
    h = history()
    plain = forecast_site(h, AT, 8)
    f = forecast_site(h, AT, 8, live_price=live)
    p0 = f.periods[0].values[PRICE]
    assert f.periods[0].start == utc("2026-07-06T12:00:00+01:00")
    if exact is None:
        assert p0 == plain.periods[0].values[PRICE]
    else:
        assert (p0.value, p0.lower, p0.upper) == (exact, exact, exact)
    lift = f.periods[1].values[PRICE].value - plain.periods[1].values[PRICE].value
    assert {"up": lift > 0.5, "down": lift < -0.5, "same": lift == 0.0}[next_period], lift
    lifts = [f.periods[i].values[PRICE].value - plain.periods[i].values[PRICE].value for i in range(1, 8)]
    assert all(abs(b) <= abs(a) + 1e-9 for a, b in itertools.pairwise(lifts))  # never grows with lead


def test_without_a_nowcast_only_the_running_period_changes() -> None:
    h = history()
    starts = [int(utc("2026-07-06T12:00:00+01:00").timestamp()) + 1800 * i for i in range(4)]
    plain = SAME_PERIOD_7D.forecast(h, PRICE, AT, starts)
    live = SAME_PERIOD_7D.forecast(h, PRICE, AT, starts, live=30.0)
    assert plain is not None and live is not None
    assert live[0][0].value == live[0][0].lower == live[0][0].upper == 30.0
    assert live[0][1:] == plain[0][1:]


def test_the_live_price_leaves_the_net_load_alone() -> None:
    h = history()
    plain = forecast_site(h, AT, 4)
    f = forecast_site(h, AT, 4, live_price=25.0)
    assert [p.values[NET_LOAD] for p in f.periods] == [p.values[NET_LOAD] for p in plain.periods]
