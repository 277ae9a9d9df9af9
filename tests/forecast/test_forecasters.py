"""Hand-computable forecasts: a constant history, a weekly pattern, a bank holiday, a gap, clock-change
days of 46 and 50 periods, too little history, a counter jump. Every history is built from a
function of local time, so the right answer is that function (or its same-day-type mean)."""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime, timedelta

import pytest

from controller.core.forecast import NET_LOAD, PRICE, SOLAR
from controller.forecast.forecasters import PERSISTENCE, SIMILAR_DAY, Forecaster, Params, forecast_site
from controller.forecast.holidays import day_type
from controller.forecast.rows import PeriodRow
from controller.forecast.series import History
from tests.forecast.helpers import rows_from, utc

# Only same-day-type days, all weighted alike, no nowcast: the forecast is the plain mean of the
# same local time on the earlier days of the same type (bank holidays counting as Sundays).
SAME_TYPE = Forecaster("same_type", Params(same_class_weight=0.0, other_class_weight=0.0,
                                           half_life_days=math.inf, nowcast=False))


def weekly(local: datetime) -> float:
    return 10.0 * (day_type(local.date()) + 1)  # Mon 10 .. Sun and bank holidays 70


def by_hour(local: datetime) -> float:
    return 10.0 * local.hour + local.minute / 6  # 01:30 -> 15


CASES = [
    # (why, history fn, first day, days, forecast at, forecaster, [(period start, expected value)])
    ("constant", lambda t: 50.0, date(2026, 6, 1), 35, "2026-07-06T12:00:00+01:00", SIMILAR_DAY,
     [("2026-07-06T12:00:00+01:00", 50.0), ("2026-07-07T11:30:00+01:00", 50.0)]),
    ("constant, persistence", lambda t: 50.0, date(2026, 6, 1), 35, "2026-07-06T12:00:00+01:00", PERSISTENCE,
     [("2026-07-06T12:00:00+01:00", 50.0)]),
    ("weekly pattern: Sunday like Sundays, Monday like Mondays", weekly, date(2026, 6, 1), 35,
     "2026-07-05T06:00:00+01:00", SAME_TYPE,
     [("2026-07-05T06:00:00+01:00", 70.0), ("2026-07-06T05:30:00+01:00", 10.0)]),
    ("weekly pattern, persistence = last week", weekly, date(2026, 6, 1), 35, "2026-07-05T06:00:00+01:00",
     PERSISTENCE, [("2026-07-05T06:00:00+01:00", 70.0), ("2026-07-06T05:30:00+01:00", 10.0)]),
    # 25 May 2026 is the spring bank holiday: forecast like a Sunday, and the Monday a week later is
    # forecast from ordinary Mondays only (the holiday is not one).
    ("bank holiday like a Sunday", weekly, date(2026, 4, 20), 35, "2026-05-25T00:00:00+01:00", SAME_TYPE,
     [("2026-05-25T10:00:00+01:00", 70.0)]),
    ("the Monday after: ordinary Mondays", weekly, date(2026, 4, 27), 35, "2026-06-01T00:00:00+01:00", SAME_TYPE,
     [("2026-06-01T10:00:00+01:00", 10.0)]),
    # 29 March 2026 has 46 periods (no 01:00-01:59 local); 25 October has 50 (01:00-01:59 twice).
    ("46-period day", by_hour, date(2026, 3, 1), 28, "2026-03-29T00:00:00+00:00", SAME_TYPE,
     [("2026-03-29T00:30:00+00:00", 5.0), ("2026-03-29T01:00:00+00:00", 20.0), ("2026-03-29T22:30:00+01:00", 225.0)]),
    ("50-period day", by_hour, date(2026, 9, 27), 28, "2026-10-25T00:00:00+01:00", SAME_TYPE,
     [("2026-10-25T01:30:00+01:00", 15.0), ("2026-10-25T01:30:00+00:00", 15.0), ("2026-10-25T02:00:00+00:00", 20.0)]),
]


@pytest.mark.parametrize(("why", "fn", "first", "days", "at", "forecaster", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_hand_computable(why: str, fn: object, first: date, days: int, at: str, forecaster: Forecaster,
                         expected: list[tuple[str, float]]) -> None:
    history = History.from_rows(rows_from(fn, first, days))  # type: ignore[arg-type]
    start = utc(at)
    starts = [int((start + timedelta(minutes=30 * i)).timestamp()) for i in range(50)]
    out = forecaster.forecast(history, NET_LOAD, start, starts)
    assert out is not None
    by_start = dict(zip(starts, out[0], strict=True))
    for when, value in expected:
        band = by_start[int(utc(when).timestamp())]
        assert band.value == pytest.approx(value, abs=1e-6), when
        assert band.lower <= band.value <= band.upper


def test_day_of_46_and_50_periods_from_forecast_site() -> None:
    history = History.from_rows(rows_from(by_hour, date(2026, 9, 27), 28, price=lambda t: 7.0))
    f = forecast_site(history, utc("2026-10-25T00:00:00+01:00"), horizon=50)
    starts = [p.start for p in f.periods]
    assert starts[-1] == utc("2026-10-25T23:30:00+00:00")  # the whole 50-period day, in real time
    assert all(b - a == timedelta(minutes=30) for a, b in itertools.pairwise(starts))
    assert f.forecasters == {NET_LOAD: "similar_day", PRICE: "price_blend"}
    assert all(p.values[PRICE].value == pytest.approx(7.0) for p in f.periods)


def test_a_gap_of_days_is_bridged_and_said() -> None:
    rows = [r for r in rows_from(lambda t: 50.0, date(2026, 6, 1), 35)
            if not utc("2026-06-28T00:00:00+01:00") <= r.period_start < utc("2026-07-02T00:00:00+01:00")]
    f = forecast_site(History.from_rows(rows), utc("2026-07-05T12:00:00+01:00"))
    assert all(p.values[NET_LOAD].value == pytest.approx(50.0) for p in f.periods)
    assert "net_load_kw: 25 of 28 days of history" in f.notes  # 29 dates touched by the window, 4 missing


def test_too_little_history_is_wide_and_noted_never_an_error() -> None:
    rows = rows_from(lambda t: 40.0 + t.hour, date(2026, 6, 1), 1)
    f = forecast_site(History.from_rows(rows), utc("2026-06-02T00:00:00+01:00"))
    assert len(f.periods) == 48
    assert any("interval widened" in n for n in f.notes)
    widths = [p.values[NET_LOAD].upper - p.values[NET_LOAD].lower for p in f.periods]
    assert min(widths) > 10  # one day says little: wide
    none = forecast_site(History.from_rows([]), utc("2026-06-02T00:00:00+01:00"))
    assert none.forecasters == {} and all(p.values == {} for p in none.periods)
    assert "net_load_kw: no history; not forecast" in none.notes


def test_a_counter_jump_and_bad_values_are_dropped() -> None:
    rows = rows_from(lambda t: 50.0, date(2026, 6, 1), 35)
    jump = rows[500]
    rows[500] = PeriodRow(jump.period_start, 1e6, 0.0, 0.0, 0.0, 500.0)  # a meter replaced
    rows[501] = PeriodRow(rows[501].period_start, -5.0, 0.0, 0.0, 0.0, 500.0)  # impossible
    history = History.from_rows(rows)
    assert history.dropped[NET_LOAD] == 2
    f = forecast_site(history, utc("2026-07-06T12:00:00+01:00"))
    assert all(p.values[NET_LOAD].value == pytest.approx(50.0) for p in f.periods)


def test_nowcast_carries_the_latest_departure() -> None:
    # Every day alike, except today has run 20 kW above the usual since 06:00: the next period is
    # forecast above the similar days, decaying towards them, and never below them.
    def fn(t: datetime) -> float:
        base = 40.0 + 10 * math.sin(t.hour / 24 * 2 * math.pi) + (3.0 if t.minute else -3.0)
        return base + (20.0 if t.date() == date(2026, 7, 6) and t.hour >= 6 else 0.0)

    history = History.from_rows([r for r in rows_from(fn, date(2026, 6, 1), 36)
                                 if r.period_start < utc("2026-07-06T12:00:00+01:00")])
    f = forecast_site(history, utc("2026-07-06T12:00:00+01:00"))
    plain = SAME_TYPE.forecast(history, NET_LOAD, f.made_at, [int(p.start.timestamp()) for p in f.periods])
    assert plain is not None
    lift = [p.values[NET_LOAD].value - b.value for p, b in zip(f.periods, plain[0], strict=True)]
    assert lift[0] > 5.0
    assert lift[-1] < lift[0]


def test_solar_never_negative_and_zero_at_night() -> None:
    rows = rows_from(lambda t: 30.0, date(2026, 6, 1), 30,
                     solar_kw=lambda t: 50 * math.sin((t.hour - 6) / 14 * math.pi) if 6 <= t.hour < 20 else 0.0)
    f = forecast_site(History.from_rows(rows), utc("2026-07-01T00:00:00+01:00"))
    solar = [p.values[SOLAR] for p in f.periods]
    assert all(b.lower >= 0 for b in solar)
    assert solar[2].value == 0.0 and solar[2].upper == pytest.approx(0.0, abs=1e-9)  # 01:00 local
