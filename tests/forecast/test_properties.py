"""Any history (gaps, NaN, negatives, absurd values, clock changes) gives finite forecasts with
lower <= value <= upper, for every quantity and every forecaster, at any time."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.forecast import QUANTITIES
from controller.forecast.forecasters import FORECASTERS, forecast_site, period_starts
from controller.forecast.rows import PeriodRow
from controller.forecast.series import History

cell = st.one_of(st.none(), st.just(math.nan), st.just(math.inf), st.floats(-1e12, 1e12, allow_nan=False),
                 st.floats(-50, 300, allow_nan=False))


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[PeriodRow], datetime]:
    # Around both 2026 clock changes and far from them.
    start = draw(st.sampled_from([datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 10, 18, tzinfo=UTC),
                                  datetime(2026, 6, 1, tzinfo=UTC)]))
    n = draw(st.integers(0, 48 * 16))
    keep = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    rows = []
    for i in range(n):
        if not keep[i] and i % 7:
            continue  # gaps
        rows.append(PeriodRow(start + timedelta(minutes=30 * i), *(draw(cell) for _ in range(8))))
    at = start + timedelta(minutes=draw(st.integers(0, 30 * (n + 100))))
    return rows, at


def _check_bands(bands: list[object]) -> None:
    for b in bands:
        value, lower, upper = b.value, b.lower, b.upper  # type: ignore[attr-defined]
        assert all(math.isfinite(x) for x in (value, lower, upper))
        assert lower <= value <= upper


@settings(max_examples=40, deadline=None)
@given(histories(), st.integers(1, 60))
def test_any_history_gives_finite_ordered_forecasts(case: tuple[list[PeriodRow], datetime], horizon: int) -> None:
    rows, at = case
    history = History.from_rows(rows)
    f = forecast_site(history, at, horizon)
    assert len(f.periods) == horizon
    for q in QUANTITIES:
        _check_bands([b for b in f.series(q) if b is not None])
    starts = period_starts(at, horizon)
    for quantity, candidates in FORECASTERS.items():
        for forecaster in candidates:
            out = forecaster.forecast(history, quantity, at, starts)
            if out is not None:
                assert len(out[0]) == horizon
                _check_bands(list(out[0]))
